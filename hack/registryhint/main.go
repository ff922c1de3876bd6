// Command registryhint is the only "registry" the real dev node's
// containerd knows: it answers every pull with 403 and a registry error
// that names the image and the command that would have put it on the node
// (podkit dev import). The kubelet shows that message in ErrImagePull, so a
// pod whose image was never imported says how to fix it instead of failing
// on DNS. hack/tools.sh builds it; podkit dev up --real-node runs it.
package main

import (
	"encoding/json"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	// The node directory is only recorded on the command line, where
	// podkit dev down recognises its own process.
	_ = flag.String("node", "", "directory of the dev node that runs this process")
	flag.Parse()
	srv := &http.Server{Addr: *addr, Handler: http.HandlerFunc(hint), ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		slog.Error("registry hint server stopped", "err", err)
		os.Exit(1)
	}
}

// hint answers /v2/<name>/manifests/<reference>?ns=<registry> (and
// anything else) with a DENIED registry error.
func hint(w http.ResponseWriter, r *http.Request) {
	image := "the image"
	if rest, ok := strings.CutPrefix(r.URL.Path, "/v2/"); ok {
		if name, ref, ok := strings.Cut(rest, "/manifests/"); ok {
			if ns := r.URL.Query().Get("ns"); ns != "" {
				name = ns + "/" + name
			}
			base := name
			if strings.HasPrefix(ref, "sha256:") {
				image = name + "@" + ref
			} else {
				image = name + ":" + ref
			}
			image += " is not on this node, and the dev node pulls from no registry: import an OCI archive tagged " + strings.TrimPrefix(strings.TrimPrefix(image, name), ":") + " (make image writes them) with: podkit dev import ARCHIVE --as " + base
		}
	}
	body, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": "DENIED", "message": image}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write(body)
}
