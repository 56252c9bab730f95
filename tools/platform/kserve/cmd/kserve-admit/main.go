// Command kserve-admit runs KServe v0.20.0's own admission code on the objects in YAML files,
// offline: the InferenceService defaulter (with KServe's shipped inferenceservice-config in
// Standard mode) then InferenceServiceValidator, the controller's storageUri check, the
// ServingRuntime/ClusterServingRuntime webhooks and InferenceGraphValidator, then the graph
// controller's service lookup and predictor-URL resolution.
//
// Usage: kserve-admit [-o DIR] FILE...
// Exit 0: every KServe object admitted; 1: at least one refused (each named, with KServe's
// message); 2: unreadable input or usage error.
package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-logr/logr"
	"github.com/kserve/kserve/pkg/apis/serving/v1alpha1"
	"github.com/kserve/kserve/pkg/apis/serving/v1beta1"
	"github.com/kserve/kserve/pkg/constants"
	isvcutils "github.com/kserve/kserve/pkg/controller/v1beta1/inferenceservice/utils"
	srwebhook "github.com/kserve/kserve/pkg/webhook/admission/servingruntime"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	kjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"
)

//go:embed inferenceservice-config.yaml
var shippedConfigMap []byte

// kserveConfig holds the configs KServe's defaulting webhook builds from inferenceservice-config.
type kserveConfig struct {
	isvc     *v1beta1.InferenceServicesConfig
	deploy   *v1beta1.DeployConfig
	security *v1beta1.SecurityConfig
}

// loadConfig decodes KServe's shipped ConfigMap with KServe's own constructors, then sets
// deploy.defaultDeploymentMode to mode (the shipped file says Serverless; we install Standard).
func loadConfig(mode string) (*kserveConfig, error) {
	cm := &corev1.ConfigMap{}
	if err := sigsyaml.UnmarshalStrict(shippedConfigMap, cm); err != nil {
		return nil, fmt.Errorf("embedded inferenceservice-config: %w", err)
	}
	cm.Data[v1beta1.DeployConfigName] = fmt.Sprintf(`{"defaultDeploymentMode": %q}`, mode)
	cfg := &kserveConfig{}
	var err error
	if cfg.isvc, err = v1beta1.NewInferenceServicesConfig(cm); err != nil {
		return nil, err
	}
	if cfg.deploy, err = v1beta1.NewDeployConfig(cm); err != nil {
		return nil, err
	}
	if cfg.security, err = v1beta1.NewSecurityConfig(cm); err != nil {
		return nil, err
	}
	return cfg, nil
}

// document is one YAML document of an input file.
type document struct {
	source string // FILE#index, for messages
	raw    []byte // JSON
	kind   string
	name   string
	ns     string
}

func (d document) label() string {
	if d.ns != "" {
		return fmt.Sprintf("%s %s/%s (%s)", d.kind, d.ns, d.name, d.source)
	}
	return fmt.Sprintf("%s %s (%s)", d.kind, d.name, d.source)
}

// readDocuments splits every file into its YAML documents (a List's items count as documents).
func readDocuments(paths []string) ([]document, error) {
	var docs []document
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for i := 0; ; i++ {
			chunk, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			raw, err := sigsyaml.YAMLToJSON(chunk)
			if err != nil {
				return nil, fmt.Errorf("%s document %d: %w", path, i, err)
			}
			if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
				continue
			}
			items, err := splitList(raw)
			if err != nil {
				return nil, fmt.Errorf("%s document %d: %w", path, i, err)
			}
			for j, item := range items {
				meta := struct {
					Kind     string `json:"kind"`
					Metadata struct {
						Name      string `json:"name"`
						Namespace string `json:"namespace"`
					} `json:"metadata"`
				}{}
				if err := sigsyaml.Unmarshal(item, &meta); err != nil {
					return nil, fmt.Errorf("%s document %d: %w", path, i, err)
				}
				source := fmt.Sprintf("%s#%d", path, i)
				if len(items) > 1 {
					source = fmt.Sprintf("%s#%d.%d", path, i, j)
				}
				docs = append(docs, document{source, item, meta.Kind, meta.Metadata.Name, meta.Metadata.Namespace})
			}
		}
	}
	return docs, nil
}

func splitList(raw []byte) ([][]byte, error) {
	list := struct {
		Kind  string            `json:"kind"`
		Items []json.RawMessage `json:"items"`
	}{}
	if err := sigsyaml.Unmarshal(raw, &list); err != nil {
		return nil, err
	}
	if !strings.HasSuffix(list.Kind, "List") {
		return [][]byte{raw}, nil
	}
	out := make([][]byte, 0, len(list.Items))
	for _, item := range list.Items {
		out = append(out, []byte(item))
	}
	return out, nil
}

// strictDecode decodes like the API server with fieldValidation=Strict (kubectl's default):
// field names match case-sensitively, and unknown or duplicate fields are refused.
func strictDecode(raw []byte, into any) error {
	strictErrs, err := kjson.UnmarshalStrict(raw, into)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		msgs := make([]string, len(strictErrs))
		for i, e := range strictErrs {
			msgs[i] = e.Error()
		}
		return fmt.Errorf("strict decoding error: %s", strings.Join(msgs, ", "))
	}
	return nil
}

type checker struct {
	services map[string]*v1beta1.InferenceService // "namespace/name" -> defaulted, from the files
	resolved []string                             // graph steps resolved to URLs
	cfg      *kserveConfig
	scheme   *runtime.Scheme
	client   client.Client // holds the files' ServingRuntimes: the webhook compares against them
	runtimes int           // how many (Cluster)ServingRuntimes the files hold
}

func newChecker(cfg *kserveConfig, docs []document) (*checker, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme, v1beta1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	builder := fake.NewClientBuilder().WithScheme(scheme)
	runtimes := 0
	services := map[string]*v1beta1.InferenceService{}
	for _, d := range docs {
		switch d.kind {
		case "InferenceService":
			isvc := &v1beta1.InferenceService{}
			if strictDecode(d.raw, isvc) == nil {
				isvc.DefaultInferenceService(cfg.isvc, cfg.deploy, cfg.security, nil, nil)
				services[isvc.Namespace+"/"+isvc.Name] = isvc
			}
		case "ServingRuntime":
			sr := &v1alpha1.ServingRuntime{}
			if strictDecode(d.raw, sr) == nil {
				builder = builder.WithObjects(sr)
				runtimes++
			}
		case "ClusterServingRuntime":
			csr := &v1alpha1.ClusterServingRuntime{}
			if strictDecode(d.raw, csr) == nil {
				builder = builder.WithObjects(csr)
				runtimes++
			}
		}
	}
	return &checker{services: services, cfg: cfg, scheme: scheme, client: builder.Build(), runtimes: runtimes}, nil
}

func isKServe(raw []byte) bool {
	meta := struct {
		APIVersion string `json:"apiVersion"`
	}{}
	_ = sigsyaml.Unmarshal(raw, &meta)
	return strings.HasPrefix(meta.APIVersion, constants.KServeAPIGroupName+"/")
}

// check returns the admitted (defaulted) object, or KServe's refusal.
func (c *checker) check(ctx context.Context, d document) (any, error) {
	switch d.kind {
	case "InferenceService":
		isvc := &v1beta1.InferenceService{}
		if err := strictDecode(d.raw, isvc); err != nil {
			return nil, err
		}
		// The mutating webhook runs before the validating one (API server order).
		isvc.DefaultInferenceService(c.cfg.isvc, c.cfg.deploy, c.cfg.security, nil, nil)
		if _, err := (&v1beta1.InferenceServiceValidator{}).ValidateCreate(ctx, isvc); err != nil {
			return nil, err
		}
		// After admission the controller checks the predictor's storageUri (no
		// ClusterStorageContainer exists here, so the built-in prefixes decide).
		if impl := isvc.Spec.Predictor.GetImplementation(); impl != nil {
			if err := isvcutils.ValidateStorageURI(ctx, impl.GetStorageUri(), c.client); err != nil {
				return nil, fmt.Errorf("controller: StorageURI not supported: %w", err)
			}
		}
		if err := c.checkRuntimeSelection(ctx, isvc); err != nil {
			return nil, fmt.Errorf("controller: %w", err)
		}
		return isvc, nil
	case "ServingRuntime", "ClusterServingRuntime":
		return c.checkRuntime(ctx, d)
	case "InferenceGraph":
		// KServe v0.20.0 registers no defaulter for InferenceGraph, only this validator.
		ig := &v1alpha1.InferenceGraph{}
		if err := strictDecode(d.raw, ig); err != nil {
			return nil, err
		}
		if _, err := (&v1alpha1.InferenceGraphValidator{}).ValidateCreate(ctx, ig); err != nil {
			return nil, err
		}
		if err := c.resolveGraphServices(ctx, ig); err != nil {
			return nil, fmt.Errorf("controller: %w", err)
		}
		return ig, nil
	}
	return nil, errSkip
}

var errSkip = errors.New("not a kind KServe admits")

// addressPlaceholder stands for the address KServe writes into an InferenceService's status once
// its Service exists (status.address.url); only the path after it is KServe's resolution here.
const addressPlaceholder = "address-of-"

// resolveGraphServices does what InferenceGraphReconciler.Reconcile does first for every step
// naming a serviceName: find that InferenceService in the graph's namespace ("Failed to find
// graph service", requeued for ever) and resolve its predictor URL with GetPredictorEndpoint,
// the URL the router will POST to. Skipped when the files hold no InferenceService (then they
// are expected to exist in the cluster already); the URL's path is resolved only when the files
// also hold the runtimes. Each resolved step is printed as "resolved ...".
func (c *checker) resolveGraphServices(ctx context.Context, ig *v1alpha1.InferenceGraph) error {
	if len(c.services) == 0 {
		return nil
	}
	for nodeName, node := range ig.Spec.Nodes {
		for i, step := range node.Steps {
			if step.ServiceName == "" || step.ServiceURL != "" {
				continue
			}
			isvc, ok := c.services[ig.Namespace+"/"+step.ServiceName]
			if !ok {
				return fmt.Errorf("Failed to find graph service %s: no InferenceService %s/%s in the files "+
					"(KServe's graph controller requeues until it exists)", step.ServiceName, ig.Namespace, step.ServiceName)
			}
			if c.runtimes == 0 {
				continue
			}
			withAddress := isvc.DeepCopy()
			withAddress.Status.Address = &duckv1.Addressable{URL: &apis.URL{Scheme: "http", Host: addressPlaceholder + step.ServiceName}}
			url, err := isvcutils.GetPredictorEndpoint(ctx, c.client, withAddress)
			if err != nil {
				return fmt.Errorf("service %s: %w", step.ServiceName, err)
			}
			c.resolved = append(c.resolved, fmt.Sprintf("resolved InferenceGraph %s/%s node %s step %d (%s): serviceName %s -> serviceUrl %s",
				ig.Namespace, ig.Name, nodeName, i, step.StepName, step.ServiceName, url))
		}
	}
	return nil
}

// checkRuntimeSelection makes the predictor's runtime choices the controller makes on its first
// reconcile (Predictor.reconcileModel and buildPodSpec in
// pkg/controller/v1beta1/inferenceservice/components/predictor.go), through the same exported
// KServe functions, against the runtimes in the input files. Skipped when the files hold no
// runtime: then the one the service names is expected to exist in the cluster already.
func (c *checker) checkRuntimeSelection(ctx context.Context, isvc *v1beta1.InferenceService) error {
	model := isvc.Spec.Predictor.Model
	if model == nil || c.runtimes == 0 {
		return nil
	}
	var spec *v1alpha1.ServingRuntimeSpec
	if model.Runtime != nil {
		r, _, err, _ := isvcutils.GetServingRuntime(ctx, c.client, *model.Runtime, isvc.Namespace)
		if err != nil {
			return err
		}
		if r.IsDisabled() {
			return fmt.Errorf("specified runtime %s is disabled", *model.Runtime)
		}
		if model.ProtocolVersion != nil && !r.IsProtocolVersionSupported(*model.ProtocolVersion) {
			return fmt.Errorf("specified runtime %s does not support specified protocol version", *model.Runtime)
		}
		if !model.RuntimeSupportsModel(r) {
			return fmt.Errorf("specified runtime %s does not support specified framework/version", *model.Runtime)
		}
		spec = r
	} else {
		runtimes, err := model.GetSupportingRuntimes(ctx, c.client, isvc.Namespace, false, isvc.Spec.Predictor.WorkerSpec != nil)
		if err != nil {
			return err
		}
		if len(runtimes) == 0 {
			return fmt.Errorf("no runtime found to support predictor with model type: %v", model.ModelFormat)
		}
		spec = &runtimes[0].Spec
	}
	if len(spec.Containers) == 0 {
		return errors.New("no container configuration found in selected serving runtime")
	}
	_, _, _, err := isvcutils.MergeServingRuntimeAndInferenceServiceSpecs(spec.Containers, model.Container, isvc,
		constants.InferenceServiceContainerName, spec.ServingRuntimePodSpec, isvc.Spec.Predictor.PodSpec)
	return err
}

// checkRuntime sends the object through KServe's ServingRuntime webhook handler, as the API
// server would on CREATE, with the files' other runtimes as the existing ones.
func (c *checker) checkRuntime(ctx context.Context, d document) (any, error) {
	var obj client.Object = &v1alpha1.ServingRuntime{}
	if d.kind == "ClusterServingRuntime" {
		obj = &v1alpha1.ClusterServingRuntime{}
	}
	if err := strictDecode(d.raw, obj); err != nil {
		return nil, err
	}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Operation: admissionv1.Create,
		Name:      d.name,
		Namespace: d.ns,
		Object:    runtime.RawExtension{Raw: d.raw},
	}}
	decoder := admission.NewDecoder(c.scheme)
	var resp admission.Response
	if d.kind == "ClusterServingRuntime" {
		resp = (&srwebhook.ClusterServingRuntimeValidator{Client: c.client, Decoder: decoder}).Handle(ctx, req)
	} else {
		resp = (&srwebhook.ServingRuntimeValidator{Client: c.client, Decoder: decoder}).Handle(ctx, req)
	}
	if !resp.Allowed {
		msg := "denied"
		if resp.Result != nil {
			msg = resp.Result.Message
		}
		return nil, errors.New(msg)
	}
	return obj, nil
}

func writeObject(dir string, d document, obj any) error {
	data, err := sigsyaml.Marshal(obj)
	if err != nil {
		return err
	}
	name := strings.ToLower(d.kind) + "-" + d.name + ".yaml"
	if d.ns != "" {
		name = d.ns + "-" + name
	}
	return os.WriteFile(filepath.Join(dir, name), data, 0o644)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("kserve-admit", flag.ContinueOnError)
	flags.SetOutput(stderr)
	outDir := flags.String("o", "", "write each admitted KServe object, as defaulted, into `DIR`")
	mode := flags.String("mode", string(constants.Standard), "deploy.defaultDeploymentMode of inferenceservice-config")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: kserve-admit [-o DIR] [-mode Standard] FILE...")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil || flags.NArg() == 0 {
		flags.Usage()
		return 2
	}
	silenceKServeLogs()
	cfg, err := loadConfig(*mode)
	if err != nil {
		fmt.Fprintln(stderr, "kserve-admit:", err)
		return 2
	}
	docs, err := readDocuments(flags.Args())
	if err != nil {
		fmt.Fprintln(stderr, "kserve-admit: unreadable input:", err)
		return 2
	}
	if *outDir != "" {
		if err := os.MkdirAll(*outDir, 0o755); err != nil {
			fmt.Fprintln(stderr, "kserve-admit:", err)
			return 2
		}
	}
	chk, err := newChecker(cfg, docs)
	if err != nil {
		fmt.Fprintln(stderr, "kserve-admit:", err)
		return 2
	}
	ctx := context.Background()
	admitted, refused, skipped := 0, 0, 0
	for _, d := range docs {
		if !isKServe(d.raw) {
			skipped++
			continue
		}
		obj, err := chk.check(ctx, d)
		switch {
		case errors.Is(err, errSkip):
			skipped++
		case err != nil:
			refused++
			fmt.Fprintf(stdout, "REFUSED %s: %s\n", d.label(), err)
		default:
			admitted++
			fmt.Fprintf(stdout, "admitted %s\n", d.label())
			if *outDir != "" {
				if err := writeObject(*outDir, d, obj); err != nil {
					fmt.Fprintln(stderr, "kserve-admit:", err)
					return 2
				}
			}
		}
	}
	for _, line := range chk.resolved {
		fmt.Fprintln(stdout, line)
	}
	fmt.Fprintf(stdout, "kserve-admit (KServe v0.20.0, %s mode): %d admitted, %d refused, %d not KServe objects\n",
		*mode, admitted, refused, skipped)
	if refused > 0 {
		return 1
	}
	return 0
}

// silenceKServeLogs discards KServe's controller-runtime log lines ("validate create", ...):
// the verdicts are printed by this command.
func silenceKServeLogs() { logf.SetLogger(logr.Discard()) }
