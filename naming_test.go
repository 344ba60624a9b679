package binderbuild

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
)

// dnsLabel is a DNS-1123 label (Kubernetes pod names must be one).
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func TestEscape(t *testing.T) {
	// spec §11.1
	tests := []struct {
		in, want string
	}{
		{"abcXYZ019", "abcXYZ019"},
		{"\t", "-9"},
		{"\x00", "-0"},
		{"ü", "-C3-BC"},
		{"-", "-2D"},
		{"_", "-5F"},
		{".", "-2E"},
		{"/", "-2F"},
		{":", "-3A"},
		{"a b", "a-20b"},
		{"\xff", "-FF"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := Escape(tc.in); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestImageName(t *testing.T) {
	// spec §11.3, every row.
	tests := []struct {
		name, prefix, slug, ref, want string
	}{
		{"github", "", "binder-examples-octave", "1479e0252b2e648bb755ee913292b79495931717",
			"binder-2dexamples-2doctave-03025a:1479e0252b2e648bb755ee913292b79495931717"},
		{"gcr prefix", "gcr.io/myproj/binder-", "binderhub-ci-repos-cached-minimal-dockerfile", "596b52f10efb0c9befc0c4ae850cc5175297d71c",
			"gcr.io/myproj/binder-binderhub-2dci-2drepos-2dcached-2dminimal-2ddockerfile-c90b2b:596b52f10efb0c9befc0c4ae850cc5175297d71c"},
		{"registry prefix", "registry.example.com/binder/r2d-", "jupyterhub-zero-to-jupyterhub-k8s", "f7f3ff6d1bf708bdc12e5f10e18b2a90a4795603",
			"registry.example.com/binder/r2d-jupyterhub-2dzero-2dto-2djupyterhub-2dk8s-b3e028:f7f3ff6d1bf708bdc12e5f10e18b2a90a4795603"},
		{"git", "", "https://github.com/jupyterhub/zero-to-jupyterhub-k8s", "ada2170a2181ae1760d85eab74e5264d0c6bb67f",
			"https-3a-2f-2fgithub-2ecom-2fjupyterhub-2fzero-2dto-2djupyterhub-2dk8s-e903f9:ada2170a2181ae1760d85eab74e5264d0c6bb67f"},
		{"gitlab", "", "gitlab_-org-gitlab_-foss", "b3344b7f17c335a817c5d7608c5e47fd7cabc023",
			"gitlab-5f-2dorg-2dgitlab-5f-2dfoss-a53a80:b3344b7f17c335a817c5d7608c5e47fd7cabc023"},
		{"gist", "", "8a658f7f63b13768d1e75fa2464f5092", "7daa381aae8409bfe28193e2ed8f767c26371237",
			"8a658f7f63b13768d1e75fa2464f5092-ae58b0:7daa381aae8409bfe28193e2ed8f767c26371237"},
		{"zenodo", "", "zenodo-3242074", "3242074",
			"zenodo-2d3242074-b993d2:3242074"},
		{"figshare", "", "figshare-9782777.v1", "9782777.v1",
			"figshare-2d9782777-2ev1-14e969:9782777.v1"},
		{"dataverse", "", "dataverse-dvn-2ftjclkp", "3035124.v3.0",
			"dataverse-2ddvn-2d2ftjclkp-a1371f:3035124.v3.0"},
		{"ckan", "", "ckan-my-sample-dataset-001", "my-sample-dataset-001.v1712023831",
			"ckan-2dmy-2dsample-2ddataset-2d001-5226f9:my-sample-dataset-001.v1712023831"},
		{"artifact registry", "europe-west10-docker.pkg.dev/binderhub-service-development/bh-service-test/binder", "binder-examples-requirements", "50533eb470ee6c24e872043d30b2fee463d6943f",
			"europe-west10-docker.pkg.dev/binderhub-service-development/bh-service-test/binderbinder-2dexamples-2drequirements-55ab5c:50533eb470ee6c24e872043d30b2fee463d6943f"},
		{"a*300", "", strings.Repeat("a", 300), "0123456789abcdef",
			strings.Repeat("a", 248) + "-9835fa:0123456789abcdef"},
		{"prefix and ref normalized", "Reg.Example/My_Org/", "x", "Feature_Branch",
			"reg.example/my-org/x-" + sha6("x") + ":feature-branch"},
		{"cut splits escape", strings.Repeat("p", 246), "a/b", "r",
			strings.Repeat("p", 246) + "a-" + "-" + sha6("a/b") + ":r"},
		{"prefix too long", strings.Repeat("p", 250), "slug", "r",
			strings.Repeat("p", 250) + "-" + sha6("slug") + ":r"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ImageName(tc.prefix, tc.slug, tc.ref)
			if got != tc.want {
				t.Errorf("ImageName(%q, %q, %q) = %q, want %q", tc.prefix, tc.slug, tc.ref, got, tc.want)
			}
		})
	}
}

// sha6 is the first 6 hex digits of the sha256 of s.
func sha6(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:6]
}

func TestImageNameRepositoryLen(t *testing.T) {
	// spec §11.3: slug "a"*300 with prefix "" → repository part of exactly 255 chars.
	got := ImageName("", strings.Repeat("a", 300), "0123456789abcdef")
	repo, _, _ := strings.Cut(got, ":")
	if len(repo) != 255 {
		t.Errorf("len(repository part of ImageName(\"\", \"a\"*300, ...)) = %d, want 255", len(repo))
	}
}

func TestBuildName(t *testing.T) {
	// spec §11.4, every row.
	tests := []struct {
		slug, ref, prefix, want string
	}{
		{"binder-examples-octave", "1479e0252b2e648bb755ee913292b79495931717", "build-",
			"build-binder-2dexamples-2doctave-03025a-147-e2"},
		{"binderhub-ci-repos-cached-minimal-dockerfile", "596b52f10efb0c9befc0c4ae850cc5175297d71c", "build-",
			"build-binderhub-2dci-2drepos-2dcached-2dminimal-2-c90b2b-596-01"},
		{"jupyterhub-zero-to-jupyterhub-k8s", "f7f3ff6d1bf708bdc12e5f10e18b2a90a4795603", "build-",
			"build-jupyterhub-2dzero-2dto-2djupyterhub-2dk8s-b3e028-f7f-b4"},
		{strings.Repeat("a", 300), "0123456789abcdef", "build-",
			"build-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-9835fa-012-9f"},
		{"dataverse-dvn-2ftjclkp", "3035124.v3.0", "",
			"dataverse-2ddvn-2d2ftjclkp-a1371f-303-21"},
		{"dataverse-s6-2fde95rt", "20460.v1.0", "",
			"dataverse-2ds6-2d2fde95rt-b4f9c1-204-46"},
		{"dataverse-s6-2fde95rt", "123456", "",
			"dataverse-2ds6-2d2fde95rt-b4f9c1-123-8d"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			got := buildName(tc.slug, tc.ref, tc.prefix)
			if got != tc.want {
				t.Errorf("buildName(%q, %q, %q) = %q, want %q", tc.slug, tc.ref, tc.prefix, got, tc.want)
			}
			if tc.prefix == buildNamePrefix {
				if got := BuildName(tc.slug, tc.ref); got != tc.want {
					t.Errorf("BuildName(%q, %q) = %q, want %q", tc.slug, tc.ref, got, tc.want)
				}
			}
			if len(got) > 63 || !dnsLabel.MatchString(got) {
				t.Errorf("buildName(%q, %q, %q) = %q (%d chars), want a DNS-1123 label of at most 63 chars",
					tc.slug, tc.ref, tc.prefix, got, len(got))
			}
		})
	}
}

func TestBuildNameLengths(t *testing.T) {
	// The 63-character rows of §11.4 are exactly at the limit.
	tests := []struct {
		slug, ref string
		want      int
	}{
		{"binderhub-ci-repos-cached-minimal-dockerfile", "596b52f10efb0c9befc0c4ae850cc5175297d71c", 63},
		{strings.Repeat("a", 300), "0123456789abcdef", 63},
	}
	for _, tc := range tests {
		if got := len(BuildName(tc.slug, tc.ref)); got != tc.want {
			t.Errorf("len(BuildName(%q, %q)) = %d, want %d", tc.slug, tc.ref, got, tc.want)
		}
	}
}

func TestBuildRefPart(t *testing.T) {
	// spec §11.4: "Ref part alone".
	tests := []struct {
		ref, want string
	}{
		{"3035124.v3.0", "303-21"},
		{"20460.v1.0", "204-46"},
		{"123456", "123-8d"},
		{"HEAD", "hea-b5"},
		{"main", "mai-0d"},
	}
	for _, tc := range tests {
		got := safeSlug(tc.ref, buildRefLen, buildRefHashLen)
		if got != tc.want {
			t.Errorf("safeSlug(%q, 6, 2) = %q, want %q", tc.ref, got, tc.want)
		}
		// The ref part is the tail of the build name.
		if name := BuildName("slug", tc.ref); !strings.HasSuffix(name, "-"+tc.want) {
			t.Errorf("BuildName(%q, %q) = %q, want suffix %q", "slug", tc.ref, name, "-"+tc.want)
		}
	}
}

func TestSafeSlug(t *testing.T) {
	tests := []struct {
		slug         string
		limit, hlen  int
		want         string
		wantLenLimit bool
	}{
		// The cut keeps "a-" of "a-2Fb": half an escape sequence, as upstream.
		{"a/b", 9, 6, "a-" + "-" + sha6("a/b"), true},
		// Upper case is lower-cased after escaping; hex digits too.
		{"AB-", 20, 6, "ab-2d-" + sha6("AB-"), false},
		// A cut of zero or less keeps only the hash.
		{"abc", 7, 6, "-" + sha6("abc"), true},
		{"abc", 3, 6, "-" + sha6("abc"), false},
	}
	for _, tc := range tests {
		got := safeSlug(tc.slug, tc.limit, tc.hlen)
		if got != tc.want {
			t.Errorf("safeSlug(%q, %d, %d) = %q, want %q", tc.slug, tc.limit, tc.hlen, got, tc.want)
		}
		if tc.wantLenLimit && len(got) != tc.limit {
			t.Errorf("len(safeSlug(%q, %d, %d)) = %d, want %d", tc.slug, tc.limit, tc.hlen, len(got), tc.limit)
		}
	}
}

func FuzzImageName(f *testing.F) {
	f.Add("", "binder-examples-octave", "1479e0252b2e648bb755ee913292b79495931717")
	f.Add("gcr.io/myproj/binder-", "binderhub-ci-repos-cached-minimal-dockerfile", "596b52f10efb0c9befc0c4ae850cc5175297d71c")
	f.Add("", "https://github.com/jupyterhub/zero-to-jupyterhub-k8s", "ada2170a2181ae1760d85eab74e5264d0c6bb67f")
	f.Add("", "gitlab_-org-gitlab_-foss", "b3344b7f17c335a817c5d7608c5e47fd7cabc023")
	f.Add("", "figshare-9782777.v1", "9782777.v1")
	f.Add("", strings.Repeat("a", 300), "0123456789abcdef")
	f.Add("Reg_Ü/", "ü\t\xff", "Main_Ü")
	f.Add(strings.Repeat("p", 260), "slug", "ref")
	f.Fuzz(func(t *testing.T, prefix, slug, ref string) {
		got := ImageName(prefix, slug, ref)
		if again := ImageName(prefix, slug, ref); again != got {
			t.Fatalf("ImageName(%q, %q, %q) = %q then %q, want deterministic", prefix, slug, ref, got, again)
		}
		np, nr := normalize(prefix), normalize(ref)
		if !strings.HasPrefix(got, np) || !strings.HasSuffix(got, ":"+nr) {
			t.Fatalf("ImageName(%q, %q, %q) = %q, want %q + slug + %q", prefix, slug, ref, got, np, ":"+nr)
		}
		repo := got[:len(got)-len(nr)-1]
		slugPart := repo[len(np):]
		if len(np) <= maxRepositoryLen-imageSlugHashLen-1 && len(repo) > maxRepositoryLen {
			t.Fatalf("ImageName(%q, %q, %q) = %q, repository part %d bytes, want at most %d", prefix, slug, ref, got, len(repo), maxRepositoryLen)
		}
		if want := safeSlug(slug, maxRepositoryLen-len(np), imageSlugHashLen); slugPart != want {
			t.Fatalf("ImageName(%q, %q, %q) slug part = %q, want %q", prefix, slug, ref, slugPart, want)
		}
		if strings.ContainsAny(slugPart, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_:/.") {
			t.Fatalf("ImageName(%q, %q, %q) slug part = %q, want only [a-z0-9-]", prefix, slug, ref, slugPart)
		}
		// The escaped slug part is a prefix of the lower-cased escape.
		if esc := strings.ToLower(Escape(slug)); !strings.HasPrefix(esc, slugPart[:len(slugPart)-imageSlugHashLen-1]) {
			t.Fatalf("ImageName(%q, %q, %q) slug part = %q, want a prefix of %q", prefix, slug, ref, slugPart, esc)
		}
	})
}

func FuzzBuildName(f *testing.F) {
	f.Add("binder-examples-octave", "1479e0252b2e648bb755ee913292b79495931717")
	f.Add("binderhub-ci-repos-cached-minimal-dockerfile", "596b52f10efb0c9befc0c4ae850cc5175297d71c")
	f.Add(strings.Repeat("a", 300), "0123456789abcdef")
	f.Add("dataverse-dvn-2ftjclkp", "3035124.v3.0")
	f.Add("", "")
	f.Add("-", "-")
	f.Add("ü\t\xff", "HEAD")
	f.Fuzz(func(t *testing.T, slug, ref string) {
		got := BuildName(slug, ref)
		if again := BuildName(slug, ref); again != got {
			t.Fatalf("BuildName(%q, %q) = %q then %q, want deterministic", slug, ref, got, again)
		}
		if len(got) > maxBuildNameLen {
			t.Fatalf("BuildName(%q, %q) = %q, %d chars, want at most %d", slug, ref, got, len(got), maxBuildNameLen)
		}
		if !dnsLabel.MatchString(got) {
			t.Fatalf("BuildName(%q, %q) = %q, want a DNS-1123 label", slug, ref, got)
		}
		if !strings.HasPrefix(got, buildNamePrefix) {
			t.Fatalf("BuildName(%q, %q) = %q, want prefix %q", slug, ref, got, buildNamePrefix)
		}
		if want := "-" + safeSlug(ref, buildRefLen, buildRefHashLen); !strings.HasSuffix(got, want) {
			t.Fatalf("BuildName(%q, %q) = %q, want suffix %q", slug, ref, got, want)
		}
	})
}

func BenchmarkNames(b *testing.B) {
	const (
		prefix = "registry.example.com/binder/r2d-"
		slug   = "jupyterhub-zero-to-jupyterhub-k8s"
		ref    = "f7f3ff6d1bf708bdc12e5f10e18b2a90a4795603"
	)
	b.ReportAllocs()
	for b.Loop() {
		_ = ImageName(prefix, slug, ref)
		_ = BuildName(slug, ref)
	}
}
