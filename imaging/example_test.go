package imaging_test

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/delivery-edge/edge/imaging"
	"go.uber.org/zap"
)

func ExampleBuildURL() {
	u := imaging.URLParts{
		UUID:            "491e3bf6-3b4a-4f3e-9a43-0c6b8f4f1d2a",
		ImageModified:   1693175642190,
		VariantModified: 1690882394067,
		Variant:         "1x1-144",
		Width:           144,
		Format:          "jpg",
	}
	fmt.Println(imaging.BuildURL("/image", u))
	// Output: /image/491e3bf6-3b4a-4f3e-9a43-0c6b8f4f1d2a/AAABijkh-E4/AAABibBxx9M/1x1-144.jpg
}

// Example wires the image service as an adapter (the Caddy module) does:
// a store, the access handler, the updater fed with events, the cleanup job
// and the health check. cms is the staging client adapted to imaging.CMS.
func Example() {
	var cms imaging.CMS // e.g. an adapter around stagingclient
	if cms == nil {
		return
	}
	ctx := context.Background()
	log := zap.NewNop()
	store, err := imaging.NewFolderStore(os.TempDir() + "/images")
	if err != nil {
		panic(err)
	}
	access := imaging.NewAccess(imaging.AccessConfig{Prefix: "/image", Widths: []int{320, 640, 960, 1280}}, store, cms, log)
	http.Handle("/image/", access)

	updater := imaging.NewUpdater(store, cms, log)
	_ = updater.HandleEvent(ctx, imaging.ImageEvent{NodeType: imaging.NodeTypeImage,
		UUID: "491e3bf6-3b4a-4f3e-9a43-0c6b8f4f1d2a", State: imaging.StateDeleted, SourceTime: 1})
	_, _ = updater.Cleanup(ctx, 500)

	http.HandleFunc("/actuator/health", func(w http.ResponseWriter, r *http.Request) {
		h, status := imaging.CheckHealth(r.Context(), store, nil)
		imaging.WriteHealth(w, h, status)
	})
}
