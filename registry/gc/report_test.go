package gc

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// sampleReport is a report with every kind of row.
func sampleReport(dryRun bool) Report {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	img := func(repo, digest string, age time.Duration, size int64, tags ...string) Image {
		return Image{Repository: "registry.example.com/binder/" + repo, Digest: "sha256:" + digest, Tags: tags, Created: now.Add(-age), Size: size}
	}
	rep := Report{
		Registry: "registry.example.com",
		Prefix:   "registry.example.com/binder/r2d-",
		DryRun:   dryRun,
		Settings: Settings{
			ImagePrefix: "registry.example.com/binder/r2d-", MaxAge: 30 * day, Keep: 2, MaxTotalSize: 500 << 30,
			Aggressive: Largest, Patterns: []string{"ci-2drepos"}, MinAge: time.Hour, ProtectRunning: true, Workers: 8, Delete: !dryRun,
		},
		Started:  now,
		Finished: now.Add(3 * time.Second),
		Images:   42,
		Results: []Result{
			{Candidate: Candidate{Image: img("r2d-old-abc123", "0123456789abcdef0123", 45*day+time.Hour, 3<<30, "1479e0252b2e648bb755ee913292b79495931717"),
				Reasons: []Reason{{PolicyMaxAge, "created 45d ago, over 30d"}, {PolicyKeep, "3rd newest of 3 in its repository, keep 2"}}}},
			{Candidate: Candidate{Image: img("r2d-ci-2drepos-def456", "fedcba9876543210fedc", 5*time.Hour, 150<<20, "596b52f1", "latest"),
				Reasons: []Reason{{PolicyPattern, `binder/r2d-ci-2drepos-def456:596b52f1 matches "ci-2drepos"`}}}},
			{Candidate: Candidate{Image: img("r2d-big-0a0b0c", "00aa11bb22cc33dd44ee", 12*day, 9<<30, "f7f3ff6d"),
				Reasons: []Reason{{PolicySizeCap, "510.0 GiB kept, over the cap of 500.0 GiB; largest first"}}}},
		},
		Protected: []Candidate{
			{Image: img("r2d-new-1a2b3c", "99887766554433221100", 40*time.Minute, 2<<30, "abc"),
				Reasons:     []Reason{{PolicySizeCap, "501.0 GiB kept, over the cap of 500.0 GiB; largest first"}},
				Protections: []Reason{{ProtectMinAge, "created 40m ago, under 1h"}, {ProtectRunning, "used by a running pod (registry.example.com/binder/r2d-new-1a2b3c:abc)"}}},
		},
		TotalBytes:     520 << 30,
		MaxTotalSize:   500 << 30,
		FreedBytes:     12<<30 + 150<<20,
		RemainingBytes: 520<<30 - (12<<30 + 150<<20),
	}
	if !dryRun {
		rep.Results[0].Status, rep.Results[0].Attempts = StatusDeleted, 1
		rep.Results[1].Status, rep.Results[1].Attempts = StatusAlreadyDeleted, 1
		rep.Results[2].Status, rep.Results[2].Attempts = StatusFailed, 4
		rep.Results[2].Error = "delete registry.example.com/binder/r2d-big-0a0b0c@sha256:00aa11bb22cc33dd44ee: unexpected status code 500"
		rep.Deleted, rep.Failed = 2, 1
		rep.FreedBytes = 3<<30 + 150<<20
		rep.RemainingBytes = rep.TotalBytes - rep.FreedBytes
	} else {
		for i := range rep.Results {
			rep.Results[i].Status = StatusWouldDelete
		}
	}
	return rep
}

func TestWriteTableGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		dryRun bool
	}{{"table-dry-run", true}, {"table-delete", false}} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteTable(&b, sampleReport(tc.dryRun)); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", tc.name+".golden"), b.Bytes())
		})
	}
}

// golden compares got with the file, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// jsonReport is the report schema documented in README.md.
type jsonReport struct {
	Registry string `json:"registry"`
	Prefix   string `json:"prefix"`
	DryRun   bool   `json:"dry_run"`
	Settings struct {
		ImagePrefix    string   `json:"image_prefix"`
		InsecureHosts  []string `json:"insecure_hosts"`
		MaxAge         string   `json:"max_age"`
		Keep           int      `json:"keep"`
		MaxTotalSize   int64    `json:"max_total_size"`
		Aggressive     string   `json:"aggressive"`
		Patterns       []string `json:"patterns"`
		Purge          bool     `json:"purge"`
		MinAge         string   `json:"min_age"`
		ProtectRunning bool     `json:"protect_running"`
		Namespace      string   `json:"namespace"`
		Workers        int      `json:"workers"`
		Delete         bool     `json:"delete"`
		Schedule       string   `json:"schedule"`
	} `json:"settings"`
	Started        time.Time       `json:"started"`
	Finished       time.Time       `json:"finished"`
	Images         int             `json:"images"`
	TotalBytes     int64           `json:"total_bytes"`
	Results        []jsonCandidate `json:"results"`
	Protected      []jsonCandidate `json:"protected"`
	Deleted        int             `json:"deleted"`
	Failed         int             `json:"failed"`
	FreedBytes     int64           `json:"freed_bytes"`
	RemainingBytes int64           `json:"remaining_bytes"`
	MaxTotalSize   int64           `json:"max_total_size"`
	OverCap        bool            `json:"over_cap"`
}

type jsonCandidate struct {
	Repository     string       `json:"repository"`
	Digest         string       `json:"digest"`
	MediaType      string       `json:"media_type"`
	Tags           []string     `json:"tags"`
	Created        time.Time    `json:"created"`
	Size           int64        `json:"size"`
	Children       []string     `json:"children"`
	Reasons        []jsonReason `json:"reasons"`
	Protections    []jsonReason `json:"protections"`
	DeleteChildren []string     `json:"delete_children"`
	Status         string       `json:"status"`
	Error          string       `json:"error"`
	Attempts       int          `json:"attempts"`
}

type jsonReason struct {
	Policy string `json:"policy"`
	Detail string `json:"detail"`
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteJSON(&b, sampleReport(false)); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&b)
	dec.DisallowUnknownFields()
	var got jsonReport
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode report into the documented schema: %v", err)
	}
	if got.Settings.MaxAge != "30d" || got.Settings.MinAge != "1h" || got.Settings.MaxTotalSize != 500<<30 {
		t.Errorf("settings max_age, min_age, max_total_size = %q, %q, %d, want 30d, 1h, %d", got.Settings.MaxAge, got.Settings.MinAge, got.Settings.MaxTotalSize, int64(500<<30))
	}
	if len(got.Results) != 3 || got.Results[2].Status != "failed" || got.Results[2].Error == "" || got.Results[2].Attempts != 4 {
		t.Errorf("results = %+v, want 3 with the last failed after 4 attempts", got.Results)
	}
	if r := got.Results[0]; len(r.Reasons) != 2 || r.Reasons[0].Policy != "max-age" || r.Tags[0] != "1479e0252b2e648bb755ee913292b79495931717" {
		t.Errorf("results[0] = %+v, want max-age and keep reasons", r)
	}
	if len(got.Protected) != 1 || len(got.Protected[0].Protections) != 2 || got.Protected[0].Protections[1].Policy != "running" {
		t.Errorf("protected = %+v, want one image protected by min-age and running", got.Protected)
	}
	if got.Deleted != 2 || got.Failed != 1 || got.DryRun || got.FreedBytes != 3<<30+150<<20 {
		t.Errorf("deleted, failed, dry_run, freed_bytes = %d, %d, %v, %d", got.Deleted, got.Failed, got.DryRun, got.FreedBytes)
	}
}
