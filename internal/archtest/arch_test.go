package archtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/responder-ir/responder/responder/cloud"
)

const module = "github.com/responder-ir/responder"

// pkg is what `go list -deps -json` says of one package of the module.
type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string // direct imports of GoFiles
	Deps       []string // every package GoFiles depend on, transitively
}

// modulePackages lists the module's packages (not their tests: the rules
// are about what ships; tests may reach for fakes and helpers).
func modulePackages(t *testing.T) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json", module+"/...")
	cmd.Dir = repoRoot(t)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list: %v", err)
		}
		if inModule(p.ImportPath) {
			pkgs[rel(p.ImportPath)] = p
		}
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages of the module; the test is not looking at the tree", len(pkgs))
	}
	return pkgs
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func inModule(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

// rel is a package's path inside the module ("responder/step").
func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// testInfrastructure are packages that exist to test: they build their own
// clients against moto and may import anything. Nothing that ships may
// import them (rule "nothing ships test infrastructure").
var testInfrastructure = []string{"integration", "internal/lab", "internal/archtest", "responder/fakeaws", "responder/internal/casetest", "lambda/trigger/triggertest"}

func isTestInfrastructure(p string) bool {
	return slices.ContainsFunc(testInfrastructure, func(dir string) bool { return under(p, dir) })
}

// violation is one broken rule, said so that it can be fixed.
type violation struct{ rule, where, what string }

func (v violation) String() string { return fmt.Sprintf("%s: %s: %s", v.rule, v.where, v.what) }

// importRules checks the import graph. Each rule says why it exists.
func importRules(pkgs map[string]pkg) []violation {
	var out []violation
	for _, p := range sortedKeys(pkgs) {
		info := pkgs[p]
		for _, dep := range info.Deps {
			if !inModule(dep) {
				continue
			}
			d := rel(dep)
			switch {
			case under(p, "responder") && (under(d, "cmd") || under(d, "lambda")):
				out = append(out, violation{"the engine never depends on its shells", p, "depends on " + d})
			case !isTestInfrastructure(p) && isTestInfrastructure(d):
				out = append(out, violation{"nothing ships test infrastructure", p, "depends on " + d})
			case under(p, "cmd") && under(d, "lambda"), under(p, "lambda") && under(d, "cmd"):
				out = append(out, violation{"the CLI and the Lambda are separate shells over the engine", p, "depends on " + d})
			}
		}
		for _, imp := range info.Imports {
			if under(p, "responder") && strings.HasPrefix(imp, "github.com/aws/aws-lambda-go") {
				out = append(out, violation{"Lambda events are handled in lambda/, a shell over the engine", p, "imports " + imp})
			}
			if isClientBuilder(imp) && p != "responder/cloud" && !isTestInfrastructure(p) {
				out = append(out, violation{"only responder/cloud builds AWS clients", p, "imports " + imp})
			}
		}
	}
	return out
}

// isClientBuilder is an SDK package whose only use is loading configuration
// and credentials for clients.
func isClientBuilder(imp string) bool {
	return imp == "github.com/aws/aws-sdk-go-v2/config" || strings.HasPrefix(imp, "github.com/aws/aws-sdk-go-v2/credentials")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// parsed is one package's non-test files, parsed.
type parsed struct {
	fset  *token.FileSet
	files map[string]*ast.File // by file name
}

func parse(t *testing.T, p pkg) parsed {
	t.Helper()
	ps := parsed{fset: token.NewFileSet(), files: map[string]*ast.File{}}
	for _, name := range p.GoFiles {
		f, err := parser.ParseFile(ps.fset, filepath.Join(p.Dir, name), nil, 0)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		ps.files[name] = f
	}
	return ps
}

// sdkServiceImports maps the names a file gives to the SDK's service
// packages ("ec2", "s3", ...) to their import paths.
func sdkServiceImports(f *ast.File) map[string]string {
	out := map[string]string{}
	for _, imp := range f.Imports {
		path := strings.Trim(imp.Path.Value, `"`)
		const prefix = "github.com/aws/aws-sdk-go-v2/service/"
		if !strings.HasPrefix(path, prefix) || strings.Contains(strings.TrimPrefix(path, prefix), "/") {
			continue
		}
		name := filepath.Base(path)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		out[name] = path
	}
	return out
}

// clientRules checks the code of every package but cloud and the test
// infrastructure: no SDK client is constructed or held by its concrete
// type, and every AWS operation declared in an interface (the narrow
// interfaces consumers take) is in the operation registry, so that the IAM
// coverage test sees every call. A consumer may not re-declare a whole
// registry interface: it takes the registry's.
func clientRules(t *testing.T, pkgs map[string]pkg) []violation {
	registered := map[string]bool{}
	for _, op := range cloud.Operations() {
		registered[op.API] = true
	}
	var out []violation
	for _, p := range sortedKeys(pkgs) {
		if p == "responder/cloud" || isTestInfrastructure(p) {
			continue
		}
		ps := parse(t, pkgs[p])
		for _, name := range sortedKeys(ps.files) {
			f := ps.files[name]
			where := p + "/" + name
			out = append(out, clientUses(f, where)...)
			out = append(out, declaredOperations(f, where, registered)...)
		}
	}
	return out
}

// clientUses finds SDK clients built or held by their concrete type.
func clientUses(f *ast.File, where string) []violation {
	services := sdkServiceImports(f)
	var out []violation
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		pkgIdent, ok := sel.X.(*ast.Ident)
		if !ok || services[pkgIdent.Name] == "" {
			return true
		}
		switch sel.Sel.Name {
		case "NewFromConfig", "New", "NewPresignClient", "Client", "PresignClient":
			out = append(out, violation{"only responder/cloud builds AWS clients", where, pkgIdent.Name + "." + sel.Sel.Name})
		}
		return true
	})
	return out
}

// registryInterfaces are the operation registry's interfaces, by IAM
// prefix: a consumer that needs all of one takes it rather than copying it.
var registryInterfaces = map[string][]reflect.Type{
	"ec2":         {reflect.TypeFor[cloud.EC2](), reflect.TypeFor[cloud.ForensicsEC2]()},
	"s3":          {reflect.TypeFor[cloud.S3]()},
	"sns":         {reflect.TypeFor[cloud.SNS]()},
	"sts":         {reflect.TypeFor[cloud.STS]()},
	"kms":         {reflect.TypeFor[cloud.KMS]()},
	"ssm":         {reflect.TypeFor[cloud.SSM]()},
	"states":      {reflect.TypeFor[cloud.SFN]()},
	"securityhub": {reflect.TypeFor[cloud.SecurityHub]()},
}

// redeclares names the registry interface whose operations are exactly
// ops (one service), or "".
func redeclares(prefix string, ops []string) string {
	for _, iface := range registryInterfaces[prefix] {
		var names []string
		for i := range iface.NumMethod() {
			names = append(names, iface.Method(i).Name)
		}
		if slices.Equal(names, slices.Sorted(slices.Values(ops))) {
			return "cloud." + iface.Name()
		}
	}
	return ""
}

// declaredOperations checks the interface methods shaped like SDK
// operations: (context.Context, *svc.XInput, ...func(*svc.Options)).
func declaredOperations(f *ast.File, where string, registered map[string]bool) []violation {
	services := sdkServiceImports(f)
	var out []violation
	ast.Inspect(f, func(n ast.Node) bool {
		spec, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		iface, ok := spec.Type.(*ast.InterfaceType)
		if !ok {
			return true
		}
		byPrefix := map[string][]string{}
		for _, m := range iface.Methods.List {
			svc, ok := sdkService(m, services)
			if !ok || len(m.Names) == 0 {
				continue
			}
			byPrefix[iamPrefix(svc)] = append(byPrefix[iamPrefix(svc)], m.Names[0].Name)
			api := iamPrefix(svc) + ":" + m.Names[0].Name
			if !registered[api] {
				out = append(out, violation{"every AWS operation is in the operation registry", where,
					fmt.Sprintf("interface %s declares %s, which no responder/cloud interface lists (add it there, and to the IAM policy)", spec.Name.Name, api)})
			}
		}
		if len(byPrefix) == 1 && len(iface.Methods.List) == len(slices.Concat(slices.Collect(maps.Values(byPrefix))...)) {
			for prefix, ops := range byPrefix {
				if same := redeclares(prefix, ops); same != "" {
					out = append(out, violation{"consumers take the registry's interfaces, not copies", where,
						fmt.Sprintf("interface %s re-declares %s: use it", spec.Name.Name, same)})
				}
			}
		}
		return true
	})
	return out
}

// sdkService returns the service package name of an interface method whose
// last parameter is ...func(*svc.Options).
func sdkService(m *ast.Field, services map[string]string) (string, bool) {
	fn, ok := m.Type.(*ast.FuncType)
	if !ok || fn.Params == nil || len(fn.Params.List) == 0 {
		return "", false
	}
	last := fn.Params.List[len(fn.Params.List)-1].Type
	ell, ok := last.(*ast.Ellipsis)
	if !ok {
		return "", false
	}
	optFn, ok := ell.Elt.(*ast.FuncType)
	if !ok || len(optFn.Params.List) != 1 {
		return "", false
	}
	star, ok := optFn.Params.List[0].Type.(*ast.StarExpr)
	if !ok {
		return "", false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Options" {
		return "", false
	}
	id, ok := sel.X.(*ast.Ident)
	if !ok || services[id.Name] == "" {
		return "", false
	}
	return filepath.Base(services[id.Name]), true
}

// iamPrefix is the registry's prefix for a service package.
func iamPrefix(svc string) string {
	if svc == "sfn" {
		return "states"
	}
	return svc
}

func report(t *testing.T, vs []violation) {
	t.Helper()
	for _, v := range vs {
		t.Error(v)
	}
}

func TestImportRules(t *testing.T) { report(t, importRules(modulePackages(t))) }

func TestOnlyCloudBuildsClientsAndEveryOperationIsRegistered(t *testing.T) {
	report(t, clientRules(t, modulePackages(t)))
}
