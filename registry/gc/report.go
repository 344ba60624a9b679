package gc

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/binderbuild/binderbuild/internal/units"
)

// MarshalJSON writes durations as units.ParseDuration strings ("30d") instead of
// nanoseconds; ConfirmPurge is never written.
func (s Settings) MarshalJSON() ([]byte, error) {
	type plain Settings
	return json.Marshal(struct {
		plain
		MaxAge string `json:"max_age"`
		MinAge string `json:"min_age"`
	}{plain(s), units.FormatDuration(s.MaxAge), units.FormatDuration(s.MinAge)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Settings) UnmarshalJSON(b []byte) error {
	type plain Settings
	aux := struct {
		*plain
		MaxAge string `json:"max_age"`
		MinAge string `json:"min_age"`
	}{plain: (*plain)(s)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	var err error
	if aux.MaxAge != "" {
		if s.MaxAge, err = units.ParseDuration(aux.MaxAge); err != nil {
			return fmt.Errorf("max_age: %w", err)
		}
	}
	if aux.MinAge != "" {
		if s.MinAge, err = units.ParseDuration(aux.MinAge); err != nil {
			return fmt.Errorf("min_age: %w", err)
		}
	}
	return nil
}

// WriteJSON writes rep as indented JSON (the schema in README.md).
func WriteJSON(w io.Writer, rep Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// WriteTable writes rep for a terminal: a summary of the registry and the
// policies, an aligned table with one row per image to delete (or deleted,
// or failed) and per protected image, and the bytes freed.
func WriteTable(w io.Writer, rep Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Registry %s, prefix %s: %d images, %s (compressed, shared layers counted once).\n",
		rep.Registry, rep.Prefix, rep.Images, FormatSize(rep.TotalBytes))
	fmt.Fprintf(&b, "Policies: %s.\n", describePolicies(rep.Settings))
	fmt.Fprintf(&b, "Protections: %s.\n\n", describeProtections(rep.Settings))

	if len(rep.Results)+len(rep.Protected) > 0 {
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ACTION\tREPOSITORY\tTAGS\tDIGEST\tAGE\tSIZE\tREASONS")
		for _, r := range rep.Results {
			reasons := joinReasons(r.Reasons)
			if r.Error != "" {
				reasons += "; error: " + r.Error
			}
			row(tw, rep, actionLabel(r.Status), r.Candidate, reasons)
		}
		for _, p := range rep.Protected {
			row(tw, rep, "protected", p, joinReasons(p.Reasons)+"; kept by "+joinReasons(p.Protections))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		b.WriteString("\n")
	}

	switch {
	case len(rep.Results) == 0:
		fmt.Fprintf(&b, "Nothing to delete; %s remain.\n", FormatSize(rep.RemainingBytes))
	case rep.DryRun:
		fmt.Fprintf(&b, "Dry run: nothing was deleted. %d %s would be deleted, freeing %s of %s once the registry runs its garbage collection; %s would remain.\n",
			len(rep.Results), plural(len(rep.Results), "image", "images"), FormatSize(rep.FreedBytes), FormatSize(rep.TotalBytes), FormatSize(rep.RemainingBytes))
		b.WriteString("Run again with --delete to delete them.\n")
	default:
		fmt.Fprintf(&b, "Deleted %d of %d %s (%d failed), freeing %s of %s once the registry runs its garbage collection; %s remain.\n",
			rep.Deleted, len(rep.Results), plural(len(rep.Results), "image", "images"), rep.Failed, FormatSize(rep.FreedBytes), FormatSize(rep.TotalBytes), FormatSize(rep.RemainingBytes))
		if rep.Failed > 0 {
			b.WriteString("Run again to retry the failed deletions; deleted images are skipped.\n")
		}
	}
	if rep.OverCap {
		fmt.Fprintf(&b, "Still over the size cap of %s: the rest is protected.\n", FormatSize(rep.MaxTotalSize))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// row writes one table row.
func row(w io.Writer, rep Report, action string, c Candidate, reasons string) {
	age := "?"
	if !c.Created.IsZero() {
		age = FormatAge(rep.Started.Sub(c.Created))
	}
	digest := c.Digest
	if len(digest) > len("sha256:")+12 {
		digest = digest[:len("sha256:")+12]
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", action, shortRepo(c.Repository), strings.Join(c.Tags, ","), digest, age, FormatSize(c.Size), reasons)
}

// actionLabel is the ACTION column of a result.
func actionLabel(s Status) string {
	switch s {
	case StatusWouldDelete:
		return "would delete"
	case StatusAlreadyDeleted:
		return "already gone"
	case StatusFailed:
		return "FAILED"
	}
	return string(s)
}

func joinReasons(rs []Reason) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, "; ")
}

// describePolicies lists the policies that are on.
func describePolicies(s Settings) string {
	var p []string
	if s.Purge {
		p = append(p, "purge everything")
	}
	if s.MaxAge > 0 {
		p = append(p, "max-age "+units.FormatDuration(s.MaxAge))
	}
	if s.Keep > 0 {
		p = append(p, fmt.Sprintf("keep newest %d per repository", s.Keep))
	}
	if s.MaxTotalSize > 0 {
		aggr := s.Aggressive
		if aggr == "" {
			aggr = DefaultAggressive
		}
		p = append(p, fmt.Sprintf("max-total-size %s (%s first)", FormatSize(int64(s.MaxTotalSize)), aggr))
	}
	for _, re := range s.Patterns {
		p = append(p, fmt.Sprintf("pattern %q", re))
	}
	if len(p) == 0 {
		return "none (nothing is ever chosen; see binderbuild gc --help)"
	}
	return strings.Join(p, ", ")
}

// describeProtections lists the protections that are on.
func describeProtections(s Settings) string {
	var p []string
	if s.MinAge > 0 {
		p = append(p, "min-age "+units.FormatDuration(s.MinAge))
	}
	if s.ProtectRunning {
		p = append(p, "images of running pods")
	}
	if len(p) == 0 {
		return "none"
	}
	return strings.Join(p, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
