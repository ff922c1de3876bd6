package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Image is one image read back from a layout, every blob checked against
// its digest and size.
type Image struct {
	// Descriptor is the manifest's entry in index.json.
	Descriptor Descriptor
	Manifest   Manifest
	Config     Config
	// Layers are the compressed layer blobs, in manifest order.
	Layers [][]byte
}

// Read opens the layout in dir and returns the image tagged refName (any
// image when refName is ""). It verifies the layout version, every digest
// and size from index.json down to the layers, the media types, and that
// each layer's uncompressed digest matches the config's diff_ids: what
// crane validate does, without crane.
func Read(dir, refName string) (*Image, error) {
	var layout struct {
		ImageLayoutVersion string `json:"imageLayoutVersion"`
	}
	if err := readJSON(filepath.Join(dir, LayoutFile), &layout); err != nil {
		return nil, err
	}
	if layout.ImageLayoutVersion != LayoutVersion {
		return nil, fmt.Errorf("%s: imageLayoutVersion %q, want %q", LayoutFile, layout.ImageLayoutVersion, LayoutVersion)
	}
	var index Index
	if err := readJSON(filepath.Join(dir, IndexFile), &index); err != nil {
		return nil, err
	}
	if index.SchemaVersion != 2 {
		return nil, fmt.Errorf("%s: schemaVersion %d, want 2", IndexFile, index.SchemaVersion)
	}
	var desc *Descriptor
	for i, m := range index.Manifests {
		if refName == "" || m.Annotations[AnnotationRefName] == refName {
			desc = &index.Manifests[i]
			break
		}
	}
	if desc == nil {
		return nil, fmt.Errorf("%s: no image tagged %q", IndexFile, refName)
	}
	img := &Image{Descriptor: *desc}
	if err := readBlobJSON(dir, *desc, MediaTypeManifest, &img.Manifest); err != nil {
		return nil, err
	}
	if err := readBlobJSON(dir, img.Manifest.Config, MediaTypeConfig, &img.Config); err != nil {
		return nil, err
	}
	if len(img.Manifest.Layers) != len(img.Config.RootFS.DiffIDs) {
		return nil, fmt.Errorf("manifest has %d layers but config has %d diff_ids", len(img.Manifest.Layers), len(img.Config.RootFS.DiffIDs))
	}
	for i, l := range img.Manifest.Layers {
		data, err := ReadBlob(dir, l)
		if err != nil {
			return nil, err
		}
		if l.MediaType != MediaTypeLayer {
			return nil, fmt.Errorf("layer %d: media type %q, want %q", i, l.MediaType, MediaTypeLayer)
		}
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("layer %d: decompress: %w", i, err)
		}
		if got, want := digestOf(raw), img.Config.RootFS.DiffIDs[i]; got != want {
			return nil, fmt.Errorf("layer %d: uncompressed digest %s, config diff_id %s", i, got, want)
		}
		img.Layers = append(img.Layers, data)
	}
	return img, nil
}

// ReadBlob returns the blob d points at, after checking its size and digest.
func ReadBlob(dir string, d Descriptor) ([]byte, error) {
	p, err := blobPath(dir, d.Digest)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d.Digest, err)
	}
	if int64(len(data)) != d.Size {
		return nil, fmt.Errorf("blob %s: size %d, descriptor says %d", d.Digest, len(data), d.Size)
	}
	if got := digestOf(data); got != d.Digest {
		return nil, fmt.Errorf("blob %s: content digest is %s", d.Digest, got)
	}
	return data, nil
}

func readBlobJSON(dir string, d Descriptor, mediaType string, v any) error {
	if d.MediaType != mediaType {
		return fmt.Errorf("blob %s: media type %q, want %q", d.Digest, d.MediaType, mediaType)
	}
	data, err := ReadBlob(dir, d)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode blob %s: %w", d.Digest, err)
	}
	return nil
}

func readJSON(name string, v any) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("read %s (is this an OCI image layout?): %w", name, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", name, err)
	}
	return nil
}

// File is one entry of a layer.
type File struct {
	Header tar.Header
	Data   []byte
}

// LayerFiles decompresses a gzip layer and returns its entries by path
// (without a leading "/" or "./").
func LayerFiles(layer []byte) (map[string]File, error) {
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		return nil, fmt.Errorf("open layer: %w", err)
	}
	tr := tar.NewReader(zr)
	files := map[string]File{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read layer: %w", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("read layer entry %s: %w", hdr.Name, err)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(hdr.Name, "./"), "/")
		files[name] = File{Header: *hdr, Data: data}
	}
}
