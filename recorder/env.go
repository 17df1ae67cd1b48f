package recorder

import (
	"fmt"
	"os"
	"strings"
)

// The environment variables of zeus's clients, which FromEnv reads.
const (
	EnvSockPath = "ZEUSD_SOCK_PATH" // a Unix socket path, relative to the working directory or absolute
	EnvHostPort = "ZEUSD_HOST_PORT" // host:port, or a host alone (port 4938)
	EnvToken    = "ZEUSD_TOKEN"     // the JWT
)

// Env is the zeusd connection the environment names.
type Env struct {
	// Servers is the server of ZEUSD_SOCK_PATH, else of ZEUSD_HOST_PORT
	// (every device selected); empty when neither is set.
	Servers []Server
	// Token is ZEUSD_TOKEN without surrounding spaces; "" when unset.
	Token string
}

// FromEnv reads the variables zeus's ZeusdConfig.from_env reads:
// ZEUSD_SOCK_PATH first, then ZEUSD_HOST_PORT, and ZEUSD_TOKEN. A
// variable set to "" counts as unset. It is the one place the package
// reads the environment, and only when called. A server value that does
// not parse is an error naming its variable; Token is read whatever the
// error, since it does not depend on the servers.
func FromEnv() (Env, error) { return envFrom(os.Getenv) }

// envFrom is FromEnv on the variables getenv gives.
func envFrom(getenv func(string) string) (Env, error) {
	env := Env{Token: strings.TrimSpace(getenv(EnvToken))}
	var srv Server
	var err error
	switch sock, hostPort := getenv(EnvSockPath), getenv(EnvHostPort); {
	case sock != "":
		srv, err = parseEnvServer(EnvSockPath, sock, "unix")
	case hostPort != "":
		srv, err = parseEnvServer(EnvHostPort, hostPort, "tcp")
	default:
		return env, nil
	}
	if err != nil {
		return env, err
	}
	env.Servers = []Server{srv}
	return env, nil
}

// parseEnvServer parses the value v of the variable name as a server spec
// of network: a socket path (unix:// may be written) or a host:port
// (tcp:// may be written).
func parseEnvServer(name, v, network string) (Server, error) {
	spec := v
	if network == "unix" && !strings.Contains(v, "://") {
		spec = "unix://" + v // a path, relative or not
	}
	srv, err := ParseServer(spec)
	if err != nil {
		return Server{}, fmt.Errorf("$%s: %w", name, err)
	}
	if srv.Network != network {
		want := map[string]string{"unix": "a socket path", "tcp": "host:port"}[network]
		return Server{}, fmt.Errorf("$%s=%q: want %s", name, v, want)
	}
	return srv, nil
}
