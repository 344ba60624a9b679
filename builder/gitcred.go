package builder

import (
	"net/url"
	"strconv"

	"github.com/binderbuild/binderbuild"
)

// envVar is one variable of a build's environment.
type envVar struct {
	name, value string
}

// gitCredentialEnv is the environment that hands req's git credentials to
// the build for the origin of its repository only. repo2docker's image
// names its credential helper ("env", which prints $GIT_CREDENTIAL_ENV) for
// every host, so a submodule or a redirect to another host would receive
// the credentials. Git configuration given in the environment is read last:
// its first entry empties the helper list, its second names the helper
// again for credential.<origin> alone. Without credentials, or for a
// repository URL that is not http(s), the build gets none of it.
func gitCredentialEnv(req binderbuild.BuildRequest) []envVar {
	if req.GitCredentials == "" {
		return nil
	}
	u, err := url.Parse(req.RepoURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil
	}
	config := [][2]string{
		{"credential.helper", ""},
		{"credential." + u.Scheme + "://" + u.Host + ".helper", "env"},
	}
	env := []envVar{
		{"GIT_CREDENTIAL_ENV", req.GitCredentials},
		{"GIT_CONFIG_COUNT", strconv.Itoa(len(config))},
	}
	for i, kv := range config {
		n := strconv.Itoa(i)
		env = append(env, envVar{"GIT_CONFIG_KEY_" + n, kv[0]}, envVar{"GIT_CONFIG_VALUE_" + n, kv[1]})
	}
	return env
}
