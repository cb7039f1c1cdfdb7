package fallomsdkreceiver // import "github.com/fallom/fallom-collector/receiver/fallomsdkreceiver"

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/fallom/fallom-collector/internal/sdkfile"
)

// errNoProject answers a read without an authenticated project: whose
// prompts would it be?
const errNoProject = "no authenticated project: configure auth (the fallomauth extension) or default_project_id on the fallomsdk receiver"

// sdkProject is the SDK file's content for the project of the request's
// key; without a project it answers 401 and returns nil.
func (r *sdkReceiver) sdkProject(w http.ResponseWriter, req *http.Request) *sdkfile.Project {
	id := r.project(req.Context())
	if id == "" {
		writeError(w, http.StatusUnauthorized, errNoProject)
		return nil
	}
	f := sdkfile.Empty()
	if r.sdk != nil {
		f = r.sdk.Current()
	}
	return f.Project(id)
}

// serveList answers GET /configs, /prompts and /prompt-ab-tests with the
// project's list, encoded when the file was read.
func (r *sdkReceiver) serveList(list func(*sdkfile.Project) []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if p := r.sdkProject(w, req); p != nil {
			writeJSON(w, http.StatusOK, list(p))
		}
	}
}

// handleConfigVersion is GET /configs/{key}/version/{n}: the bare config
// (FALLOM_SDK.md 3.2); the SDK reads any non-2xx as "not found".
func (r *sdkReceiver) handleConfigVersion(w http.ResponseWriter, req *http.Request) {
	key := req.PathValue("key")
	n, err := strconv.Atoi(req.PathValue("n"))
	if err != nil || n < 1 {
		writeError(w, http.StatusBadRequest, "version must be a positive integer")
		return
	}
	p := r.sdkProject(w, req)
	if p == nil {
		return
	}
	b, ok := p.ConfigVersionJSON(key, n)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("config %q has no version %d in this key's project", clip(key), n))
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// handleDataset is GET /api/datasets/{key}[?version=n][&include_entries=true]:
// entries are always included (the SDK's two callers read the same shape).
func (r *sdkReceiver) handleDataset(w http.ResponseWriter, req *http.Request) {
	key := req.PathValue("key")
	version := 0
	if s := req.URL.Query().Get("version"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "version must be a positive integer")
			return
		}
		version = n
	}
	p := r.sdkProject(w, req)
	if p == nil {
		return
	}
	b, ok := p.DatasetJSON(key, version)
	if !ok {
		msg := fmt.Sprintf("dataset %q not found in this key's project", clip(key))
		if version != 0 {
			msg = fmt.Sprintf("dataset %q has no version %d in this key's project", clip(key), version)
		}
		writeError(w, http.StatusNotFound, msg)
		return
	}
	writeJSON(w, http.StatusOK, b)
}
