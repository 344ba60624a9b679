package main

import (
	"log/slog"
	"slices"
	"strings"
)

// unusedSetting is a BINDERBUILD_* variable serve received but does not use.
type unusedSetting struct {
	name, reason string
}

// unusedSettings returns the BINDERBUILD_* variables of environ (KEY=value
// lines) that serve does not read, or reads but ignores given cfg, sorted
// by name. A setting renamed or misspelt, or one meant for a newer version,
// then shows in the log instead of vanishing.
func unusedSettings(cfg config, environ []string) []unusedSetting {
	known := settingNames()
	// Settings that only matter with another one.
	needs := map[string]string{}
	if cfg.EventsSink != "http" {
		for _, n := range []string{"EVENTS_URL", "EVENTS_BATCH_SIZE", "EVENTS_FLUSH_INTERVAL", "EVENTS_MAX_RETRIES", "EVENTS_TIMEOUT"} {
			needs[envPrefix+"_"+n] = "BINDERBUILD_EVENTS_SINK is not http"
		}
	}
	if cfg.EventsSink != "file" {
		for _, n := range []string{"EVENTS_FILE", "EVENTS_FILE_MAX_BYTES", "EVENTS_FILE_BACKUPS"} {
			needs[envPrefix+"_"+n] = "BINDERBUILD_EVENTS_SINK is not file"
		}
	}
	if cfg.Auth != "tokens" {
		needs[envPrefix+"_AUTH_TOKENS_FILE"] = "BINDERBUILD_AUTH is not tokens"
	}
	env := map[string]string{}
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		env[name] = value
	}
	var out []unusedSetting
	for name := range env {
		if !strings.HasPrefix(name, envPrefix+"_") {
			continue
		}
		const gcSchedule = envPrefix + "_GC_SCHEDULE"
		switch {
		case strings.HasPrefix(name, envPrefix+"_GC_"):
			if name != gcSchedule && strings.TrimSpace(env[gcSchedule]) == "" {
				out = append(out, unusedSetting{name, gcSchedule + " is not set: the service runs no registry gc"})
			}
		case strings.HasPrefix(name, envPrefix+"_UPGRADES_"):
			const schedule = envPrefix + "_UPGRADES_SCHEDULE"
			if name != schedule && strings.TrimSpace(env[schedule]) == "" {
				out = append(out, unusedSetting{name, schedule + " is not set: the service runs no upgrade bot"})
			}
		case !known[name]:
			out = append(out, unusedSetting{name, "not a setting of binderbuild serve (see binderbuild serve --help)"})
		case needs[name] != "":
			out = append(out, unusedSetting{name, needs[name]})
		}
	}
	slices.SortFunc(out, func(a, b unusedSetting) int { return strings.Compare(a.name, b.name) })
	return out
}

// settingNames are the variables of serve's config.
func settingNames() map[string]bool {
	names := map[string]bool{}
	for _, s := range settingsOf(envPrefix, &config{}) {
		names[s.name] = true
	}
	return names
}

// logUnusedSettings logs each unused setting once, as a warning.
func logUnusedSettings(log *slog.Logger, cfg config, environ []string) {
	for _, s := range unusedSettings(cfg, environ) {
		log.Warn("setting received but not used", "variable", s.name, "reason", s.reason)
	}
}
