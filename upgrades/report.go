package upgrades

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the report as one indented JSON document.
func WriteJSON(w io.Writer, rep Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(rep)
}

// WriteText writes the report for people: per dependency its status, old →
// new, the pull request and, when a bump is pending, its unified diff.
func WriteText(w io.Writer, rep Report) error {
	var b strings.Builder
	mode := "apply"
	if rep.DryRun {
		mode = "dry run: nothing was pushed; run with --apply to open pull requests"
	}
	fmt.Fprintf(&b, "%s (%s)\n", rep.Repository, mode)
	for _, r := range rep.Results {
		fmt.Fprintf(&b, "\n%s (%s): %s", r.Name, r.File, r.Status)
		switch {
		case r.New != "":
			fmt.Fprintf(&b, ", %s → %s", r.Old, r.New)
		case r.Old != "":
			fmt.Fprintf(&b, ", %s", r.Old)
		}
		if r.NewAppVersion != "" || r.OldAppVersion != "" {
			fmt.Fprintf(&b, " (appVersion %s → %s)", orDash(r.OldAppVersion), orDash(r.NewAppVersion))
		}
		b.WriteString("\n")
		if r.PullRequest != "" {
			fmt.Fprintf(&b, "  pull request: %s\n", r.PullRequest)
		}
		if r.Error != "" {
			fmt.Fprintf(&b, "  error: %s\n", r.Error)
		}
		if r.Diff != "" && r.Status != Failed {
			b.WriteString(r.Diff)
		}
	}
	if n := rep.Failures(); n > 0 {
		fmt.Fprintf(&b, "\n%d of %d dependencies failed.\n", n, len(rep.Results))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
