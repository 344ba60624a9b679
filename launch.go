package binderbuild

// LaunchRequest asks JupyterHub to start a server running an image. The
// fields after RepoURL are upstream's binder_* user_options, passed to the
// spawner and returned in the ready event.
type LaunchRequest struct {
	Image   string
	RepoURL string
	// User is the authenticated hub user whose server starts; empty: a
	// temporary user named from RepoURL is created.
	User string
	// HighQuota selects the higher per-repository quota.
	HighQuota bool

	RefURL            string // binder_ref_url
	LaunchHost        string // binder_launch_host
	Request           string // binder_request: v2/<provider>/<spec>
	PersistentRequest string // binder_persistent_request: v2/<provider>/<resolved spec>
	ClientIP          string // binder_client_ip
}

// Launched is a server that JupyterHub reports ready.
type Launched struct {
	// URL is the server's public URL: <hub_url>user/<escaped user>/[<name>/].
	URL string
	// Token is the token handed to the spawner in user_options.
	Token string
	// User and Server name the hub user and the server ("" for the
	// default one).
	User, Server string
}

// QuotaExceeded is a launch refused by a quota. Message is shown to the
// user as an expected failure; Status ("pod_quota", "repo_quota") labels
// binderhub_launch_count_total.
type QuotaExceeded struct {
	Status  string
	Message string
	Quota   int
	Used    int
}

func (e *QuotaExceeded) Error() string { return e.Message }

// LaunchError is a failed launch attempt: Message (without the final "\n")
// is shown to the user with status Code; Err, logged only, is why.
type LaunchError struct {
	Code    int
	Message string
	Err     error
}

func (e *LaunchError) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *LaunchError) Unwrap() error { return e.Err }
