package barrier

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podkit-dev/podkit/api/v1alpha1"
)

// RESTConfig builds the client configuration selected by cfg, as the original
// does: in-cluster config when both KubeConfigFilePath and KubeApiServerAddress
// are empty; otherwise the kubeconfig (a path or a KUBECONFIG-style list) with
// its server replaced by KubeApiServerAddress when that is set.
func RESTConfig(cfg Config) (*rest.Config, error) {
	if cfg.KubeConfigFilePath == "" && cfg.KubeApiServerAddress == "" {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("load in-cluster config (outside a pod, set %s or %s): %w",
				EnvNameKubeConfigFilePath, EnvNameKubeApiServerAddress, err)
		}
		return rc, nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{}
	if paths := filepath.SplitList(cfg.KubeConfigFilePath); len(paths) == 1 {
		rules.ExplicitPath = paths[0]
	} else {
		rules.Precedence = paths
	}
	overrides := &clientcmd.ConfigOverrides{}
	overrides.ClusterInfo.Server = cfg.KubeApiServerAddress
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %q (server %q): %w", cfg.KubeConfigFilePath, cfg.KubeApiServerAddress, err)
	}
	return rc, nil
}

// frameworkClient reads one Framework with a typed REST client and watches
// it with that client or client-go's metadata client: no discovery requests.
type frameworkClient struct {
	rest           rest.Interface
	meta           metadata.Interface
	parameterCodec runtime.ParameterCodec
	decoder        runtime.Decoder // the typed decoding of a Framework's JSON
	namespace      string
	name           string
}

func newFrameworkClient(cfg *rest.Config, namespace, name string) (*frameworkClient, error) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("register framework types: %w", err)
	}
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &v1alpha1.GroupVersion
	c.APIPath = "/apis"
	// Watch events of the Framework arrive as *rawFramework (viewSerializer).
	c.NegotiatedSerializer = viewSerializer{serializer.NewCodecFactory(scheme).WithoutConversion()}
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent() + " " + ComponentName
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("create framework client: %w", err)
	}
	mc, err := metadata.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("create framework metadata client: %w", err)
	}
	return &frameworkClient{rest: rc, meta: mc, parameterCodec: runtime.NewParameterCodec(scheme),
		decoder: runtime.WithoutVersionDecoder{Decoder: serializer.NewCodecFactory(scheme).UniversalDeserializer()}, namespace: namespace, name: name}, nil
}

func (c *frameworkClient) listOptions(rv string) *metav1.ListOptions {
	return &metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", c.name).String(),
		ResourceVersion: rv,
	}
}

// list returns the Framework (nil if it does not exist), read as watch
// events are (rawFramework), and the list's resource version to start a
// watch from.
func (c *frameworkClient) list(ctx context.Context) (*rawFramework, string, error) {
	data, err := c.rest.Get().Namespace(c.namespace).Resource("frameworks").
		VersionedParams(c.listOptions(""), c.parameterCodec).
		SetHeader("Accept", "application/json").Do(ctx).Raw()
	if err != nil {
		return nil, "", fmt.Errorf("list framework %s/%s: %w", c.namespace, c.name, err)
	}
	var l struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, "", fmt.Errorf("list framework %s/%s: decode: %w", c.namespace, c.name, err)
	}
	for _, item := range l.Items {
		v, expanded, err := decodeView(item)
		if err != nil {
			return nil, "", fmt.Errorf("list framework %s/%s: %w", c.namespace, c.name, err)
		}
		if v.name == c.name {
			return &rawFramework{raw: item, expanded: expanded, view: v}, l.Metadata.ResourceVersion, nil
		}
	}
	return nil, l.Metadata.ResourceVersion, nil
}

// getRaw returns the Framework's JSON, as the apiserver sent it, at
// resource version minRV or newer. A non-empty minRV lets the apiserver
// answer from its watch cache instead of a quorum read from etcd: a
// thousand waiters reading at once cost it no etcd request.
func (c *frameworkClient) getRaw(ctx context.Context, minRV string) ([]byte, error) {
	raw, err := c.rest.Get().Namespace(c.namespace).Resource("frameworks").Name(c.name).
		VersionedParams(&metav1.GetOptions{ResourceVersion: minRV}, c.parameterCodec).
		SetHeader("Accept", "application/json").Do(ctx).Raw()
	if err != nil {
		return nil, fmt.Errorf("get framework %s/%s: %w", c.namespace, c.name, err)
	}
	return raw, nil
}

// watch watches the Framework from resource version rv, with bookmarks:
// its metadata only (*metav1.PartialObjectMetadata events) when metaOnly,
// otherwise the whole object (*rawFramework events).
func (c *frameworkClient) watch(ctx context.Context, rv string, metaOnly bool) (watch.Interface, error) {
	opts := c.listOptions(rv)
	opts.Watch = true
	opts.AllowWatchBookmarks = true
	var w watch.Interface
	var err error
	if metaOnly {
		w, err = c.meta.Resource(v1alpha1.GroupVersion.WithResource("frameworks")).Namespace(c.namespace).Watch(ctx, *opts)
	} else {
		w, err = c.rest.Get().Namespace(c.namespace).Resource("frameworks").
			VersionedParams(opts, c.parameterCodec).Watch(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("watch framework %s/%s from resource version %s: %w", c.namespace, c.name, rv, err)
	}
	return w, nil
}
