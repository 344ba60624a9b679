package main

import "testing"

func TestSpecFromLink(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://zenodo.org/records/3242074", "zenodo/10.5281/zenodo.3242074"},
		{"https://zenodo.org/record/3242074#files", "zenodo/10.5281/zenodo.3242074"},
		{"https://doi.org/10.5281/zenodo.3242073", "zenodo/10.5281/zenodo.3242073"},
		{"10.6084/m9.figshare.9782777", "figshare/10.6084/m9.figshare.9782777"},
		{"https://figshare.com/articles/code/binder_example/9782777/1", "figshare/10.6084/m9.figshare.9782777.v1"},
		{"https://figshare.com/articles/dataset/2019/9782777", "figshare/10.6084/m9.figshare.9782777"},
		{"doi:10.4211/hs.b8f6eae9d89241cf8b5904033460af61", "hydroshare/10.4211/hs.b8f6eae9d89241cf8b5904033460af61"},
		{"https://www.hydroshare.org/resource/142C59757ED54DE1816777828C9716E7/", "hydroshare/142c59757ed54de1816777828c9716e7"},
		{"https://dx.doi.org/10.7910/DVN/TJCLKP/", "dataverse/10.7910/DVN/TJCLKP"},
		{"swh:1:dir:d198bc9d7a6bcf6db04f476d29314f157507d505", "swh/swh:1:dir:d198bc9d7a6bcf6db04f476d29314f157507d505"},
		{"https://archive.softwareheritage.org/swh:1:snp:d198bc9d7a6bcf6db04f476d29314f157507d505;origin=https://github.com/o/r",
			"swh/swh:1:snp:d198bc9d7a6bcf6db04f476d29314f157507d505"},
		{"https://gist.github.com/mariusvniekerk/8a658f7f63b13768d1e75fa2464f5092", "gist/mariusvniekerk/8a658f7f63b13768d1e75fa2464f5092"},
		{"https://github.com/binder-examples/requirements", "gh/binder-examples/requirements/HEAD"},
		{"https://github.com/binder-examples/requirements.git", "gh/binder-examples/requirements/HEAD"},
		{"https://github.com/org/repo/tree/feature/x", "gh/org/repo/feature/x"},
		{"https://gitlab.com/group/sub/project/-/tree/v1.0", "gl/group%2Fsub%2Fproject/v1.0"},
		{"https://codeberg.org/org/repo/", "git/https%3A%2F%2Fcodeberg.org%2Forg%2Frepo/HEAD"},
		{"gh/binder-examples/requirements/HEAD", ""},
		{"zenodo/10.5281/zenodo.3242074", ""},
		{"swh:1:cnt:d198bc9d7a6bcf6db04f476d29314f157507d505", ""},
		{"ftp://example.org/x", ""},
		{"org/repo", ""},
	}
	for _, tc := range tests {
		got, ok := specFromLink(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("specFromLink(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

// TestBuildCommandLink passes a pasted link to `binderbuild build`.
func TestBuildCommandLink(t *testing.T) {
	srv := eventsServer(t, cliReady)
	if _, _, err := runBuildCommand(t, noEnv, "https://zenodo.org/records/3242074", "--server", srv.URL+"/"); err != nil {
		t.Fatal(err)
	}
	if got, want := srv.requests()[0].URL.RequestURI(), "/build/zenodo/10.5281/zenodo.3242074?build_only=true"; got != want {
		t.Errorf("request URI = %q, want %q", got, want)
	}
}
