package main

import "testing"

// TestBuildPodConfig: no build timeout by default, as upstream; the release
// that labels build pods comes from the chart's HELM_RELEASE_NAME unless
// BINDERBUILD_RELEASE names one.
func TestBuildPodConfig(t *testing.T) {
	env := map[string]string{"HELM_RELEASE_NAME": "binder", "NAMESPACE": "ns"}
	cfg, err := loadConfig(mapLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BuildTimeout != 0 || cfg.Release != "binder" || cfg.BuildAppendix != "" {
		t.Errorf("BuildTimeout %v, Release %q, BuildAppendix %q; want 0, binder, none", cfg.BuildTimeout, cfg.Release, cfg.BuildAppendix)
	}
	env["BINDERBUILD_RELEASE"] = "other"
	env["BINDERBUILD_BUILD_TIMEOUT"] = "90m"
	env["BINDERBUILD_BUILD_APPENDIX"] = "RUN echo hi"
	if cfg, err = loadConfig(mapLookup(env)); err != nil {
		t.Fatal(err)
	}
	if cfg.BuildTimeout.String() != "1h30m0s" || cfg.Release != "other" || cfg.BuildAppendix != "RUN echo hi" {
		t.Errorf("BuildTimeout %v, Release %q, BuildAppendix %q; want 1h30m, other, RUN echo hi", cfg.BuildTimeout, cfg.Release, cfg.BuildAppendix)
	}
}
