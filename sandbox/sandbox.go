// Package sandbox runs, in-process and on loopback only, the world an ACME
// issuance talks to: Pebble (Let's Encrypt's test CA), an authoritative
// server for pretend customer zones, and a small recursive resolver that
// joins those zones to dcvaas's verify zone the way the internet's
// delegation does. `dcvaas demo` runs on it, and acme/acmetest builds its
// test world (with fault injection) on it. Nothing here talks to a real CA
// or a real DNS server.
package sandbox
