// Package deploy holds the files that run dcvaas elsewhere (container image,
// compose, systemd units, Kubernetes). Its tests check what this machine can
// check without a container runtime: that the files parse and keep the
// properties the README promises.
package deploy

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		DependsOn map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
	} `yaml:"services"`
}

// TestCompose: PostgreSQL and two dcvaas nodes sharing its database and one
// encryption key, each node started only once PostgreSQL is healthy, with
// its own host ports for HTTP and DNS.
func TestCompose(t *testing.T) {
	raw, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	pg, ok := c.Services["postgres"]
	if !ok || pg.Healthcheck == nil {
		t.Fatalf("no postgres service with a healthcheck: %+v", c.Services)
	}
	var nodes []string
	seen := map[string]string{}
	for name, s := range c.Services {
		if !strings.HasPrefix(name, "dcvaas") {
			continue
		}
		nodes = append(nodes, name)
		if u := s.Environment["DCVAAS_DATABASE_URL"]; !strings.HasPrefix(u, "postgres://") || !strings.Contains(u, "@postgres:5432/") {
			t.Errorf("%s: DCVAAS_DATABASE_URL %q is not the compose PostgreSQL", name, u)
		}
		if k := s.Environment["DCVAAS_ENCRYPTION_KEY"]; !strings.HasPrefix(k, "${DCVAAS_ENCRYPTION_KEY:?") {
			t.Errorf("%s: the encryption key must come from the one required variable, got %q", name, k)
		}
		if s.DependsOn["postgres"].Condition != "service_healthy" {
			t.Errorf("%s: must wait for a healthy PostgreSQL", name)
		}
		for _, p := range s.Ports {
			host, _, _ := strings.Cut(p, ":")
			proto := "tcp"
			if strings.HasSuffix(p, "/udp") {
				proto = "udp"
			}
			if other, dup := seen[host+"/"+proto]; dup {
				t.Errorf("host port %s/%s used by %s and %s", host, proto, other, name)
			}
			seen[host+"/"+proto] = name
		}
	}
	if len(nodes) != 2 {
		t.Fatalf("want two dcvaas nodes, got %v", nodes)
	}
}

// TestDockerfile: a multi-stage build of a static binary, run as a non-root
// user, with a HEALTHCHECK that needs nothing but the binary.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^FROM \S+ AS build$`),
		regexp.MustCompile(`CGO_ENABLED=0 go build`),
		regexp.MustCompile(`(?m)^HEALTHCHECK .*\n?.*CMD \["/usr/local/bin/dcvaas", "healthcheck"\]`),
		regexp.MustCompile(`(?m)^ENTRYPOINT \["/usr/local/bin/dcvaas"\]$`),
	} {
		if !want.MatchString(df) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^FROM `).FindAllString(df, -1)); n < 2 {
		t.Errorf("want a multi-stage build, got %d stages", n)
	}
	user := regexp.MustCompile(`(?m)^USER (\S+)$`).FindStringSubmatch(df)
	if user == nil || strings.HasPrefix(user[1], "0") || strings.HasPrefix(user[1], "root") {
		t.Errorf("the image must run as a non-root user, got %v", user)
	}
}
