// Package imaging is the domain library of the delivery edge's image service
// (docs/image-urls.md). It knows nothing about Caddy; the caddymodule package
// adapts it.
//
// The package holds:
//
//   - the URL format: [Parse] and [BuildURL] for
//     /<prefix>/<uuid>/<imageStamp>/<variantStamp>/<variant>[/<slug>].<format>
//     (the slug free text, percent-encoded), [BuildAbsoluteURL] with a base
//     checked by [ParseBaseURL] for absolute URLs;
//   - variant generation: [Generator] decodes an original with a pixel and
//     byte limit checked before decoding, honours EXIF orientation, crops to
//     the variant's aspect ratio around the focal point, resizes and encodes
//     JPEG, PNG, GIF or WebP;
//   - the image store: the [Store] interface with a folder implementation
//     ([FolderStore]) and an S3 implementation ([S3Store]), a store opened on
//     first use ([LazyStore]) and a memory cache of variants and state
//     records in front of a store ([MemoryCache]);
//   - the access logic: [Access], a net/http handler that serves a variant
//     from the store or generates it from the original fetched through [CMS]
//     (in production [StagingCMS], over the staging client);
//   - the update logic: [Updater], which applies CMS change events to the
//     store, and its cleanup job;
//   - the health check: [CheckHealth].
//
// # Store key layout
//
// All keys are relative to the store's root (folder or bucket + optional
// prefix):
//
//	img/<uuid>/_state                                   image state record
//	img/<uuid>/<variant>/<imageMs>-<variantMs>/<width>.<ext>  generated variant
//	var/<variant>/<uuid>                                 variant index marker
//	sys/variants                                         last seen variant definitions
//
// The image state record holds the image document's modification time and
// state (published, offline, deleted) as JSON and, duplicated, as object
// metadata and tags. The access side reads it to find the current version
// without asking the CMS, and answers 404 (offline) or 410 (deleted) from it.
// Variant objects carry the versions they were generated from in their key,
// so a generation racing with an update can never make stale bytes current;
// superseded versions are removed by [Updater.Cleanup]. A change of an image
// deletes the prefix img/<uuid>/; a change of a variant definition lists the
// index var/<variant>/ and deletes img/<uuid>/<variant>/ for each image found,
// so both are bounded by the amount of data they remove.
//
// # Serving a request
//
// [Access] parses the URL (400 if malformed), reads the image's state record
// (410 deleted / 404 offline, without asking the CMS; 503 if the store
// cannot be read), looks up the variant definition (cached, mirrored in the
// store; 404 if undefined) and, when the store knows nothing of the image or
// the URL's image stamp is newer than what it knows, asks the CMS (at most
// once per RecheckInterval per image). The variant key follows from the
// versions; a stored object is served with its ETag (conditional GET, HEAD
// and ranges through http.ServeContent), otherwise it is generated once for
// all concurrent requests (singleflight, a semaphore bounds generations),
// stored and served. An image the CMS does not know (404) and an original
// the generator refuses (422) are remembered in a [NegativeCache] for
// NegativeTTL, so that requests for them do not reach the CMS again; the
// [Updater] clears an image's entry when an event for it arrives.
// Cache-Control carries the long max-age when the versions served are at
// least as new as the URL's stamps, else the short one (the replica may be
// behind).
//
// Known limit: the store has no compare-and-set, so a generation that read
// a lagging replica may, in a window of milliseconds, write a "published"
// state record right after the update service wrote an offline/deleted
// marker; the next event for that image corrects it.
package imaging
