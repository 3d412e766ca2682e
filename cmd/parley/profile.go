package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
)

// A profile is what a party's CLI needs to talk to a server: its URL, the
// party's token and its key file. Profiles live in the user's config
// directory (PARLEY_CONFIG overrides the file), so commands need no flags
// after `parley login`.
type profile struct {
	Server string `json:"server"`
	Token  string `json:"token"`
	Keys   string `json:"keys,omitempty"`
	Party  string `json:"party,omitempty"`
	Name   string `json:"name,omitempty"`
}

type profiles struct {
	Current  string             `json:"current"`
	Profiles map[string]profile `json:"profiles"`
}

func configPath() (string, error) {
	if p := os.Getenv("PARLEY_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config directory (set PARLEY_CONFIG): %w", err)
	}
	return filepath.Join(dir, "parley", "profiles.json"), nil
}

// profileFile returns where a profile keeps a file of its own beside its
// config file: "<config stem>.<suffix>" for the profile "default" and
// "<config stem>.<profile>.<suffix>" otherwise (north.json keeps north.keys.pem).
// Two config files in one directory, or two profiles in one file, never
// share a key file or ledger state.
func profileFile(profileName, suffix string) (string, error) {
	cp, err := configPath()
	if err != nil {
		return "", err
	}
	stem := strings.TrimSuffix(filepath.Base(cp), filepath.Ext(cp))
	if profileName != "" && profileName != "default" {
		stem += "." + profileName
	}
	return filepath.Join(filepath.Dir(cp), stem+"."+suffix), nil
}

func loadProfiles() (profiles, string, error) {
	path, err := configPath()
	if err != nil {
		return profiles{}, "", err
	}
	ps := profiles{Profiles: map[string]profile{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ps, path, nil
	}
	if err != nil {
		return ps, path, err
	}
	if err := json.Unmarshal(b, &ps); err != nil {
		return ps, path, fmt.Errorf("%s is not a valid profile file: %w", path, err)
	}
	if ps.Profiles == nil {
		ps.Profiles = map[string]profile{}
	}
	return ps, path, nil
}

func saveProfiles(ps profiles, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(ps, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// clientFlags are the flags every client command shares.
type clientFlags struct {
	profile, server, token, keys string
	json                         bool
}

func addClientFlags(fs *flag.FlagSet) *clientFlags {
	cf := &clientFlags{}
	fs.StringVar(&cf.profile, "profile", env("profile", ""), "profile to use (default: the current one; env PARLEY_PROFILE)")
	fs.StringVar(&cf.server, "server", env("server", ""), "server URL, overriding the profile (env PARLEY_SERVER)")
	fs.StringVar(&cf.token, "token", env("token", ""), "API token, overriding the profile (env PARLEY_TOKEN)")
	fs.StringVar(&cf.keys, "keys", env("keys", ""), "private key file, overriding the profile (env PARLEY_KEYS)")
	fs.BoolVar(&cf.json, "json", false, "print JSON for scripts")
	return cf
}

// resolve merges flags over the chosen profile.
func (cf *clientFlags) resolve() (profile, error) {
	ps, path, err := loadProfiles()
	if err != nil {
		return profile{}, err
	}
	name := cf.profile
	if name == "" {
		name = ps.Current
	}
	p, ok := ps.Profiles[name]
	if cf.profile != "" && !ok {
		return profile{}, fmt.Errorf("%w: no profile %q in %s; run parley login --profile %s", errUsage, cf.profile, path, cf.profile)
	}
	if cf.server != "" {
		p.Server = cf.server
	}
	if cf.token != "" {
		p.Token = cf.token
	}
	if cf.keys != "" {
		p.Keys = cf.keys
	}
	if p.Server == "" || p.Token == "" {
		return profile{}, fmt.Errorf("%w: no server or token; run 'parley login --server URL --token TOKEN' first, or pass --server and --token", errUsage)
	}
	if err := checkServerURL(p.Server); err != nil {
		return profile{}, err
	}
	return p, nil
}

// client returns a client for the resolved profile. Its base is the TAXII
// prefix; the management API resolves from the same host.
func (cf *clientFlags) client() (*client.Client, profile, error) {
	p, err := cf.resolve()
	if err != nil {
		return nil, p, err
	}
	c, err := client.New(strings.TrimSuffix(p.Server, "/")+"/taxii2/", client.WithToken(p.Token), client.WithUserAgent("parley-cli/"+version))
	if err == nil {
		names = newPartyNames(c)
	}
	return c, p, err
}

// privateKeys reads the profile's key file.
func (p profile) privateKeys() (*agreement.PrivateKeys, error) {
	if p.Keys == "" {
		return nil, fmt.Errorf("%w: no key file; run 'parley keygen' or pass --keys FILE", errUsage)
	}
	return agreement.ReadPrivateKeysFile(p.Keys)
}

// emit prints v as JSON with --json, else runs text.
func emit(w io.Writer, asJSON bool, v any, text func()) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text()
	return nil
}

func init() {
	register(command{"login", "save a server URL, token and key file as a profile: login --server URL --token T [--keys FILE]", cmdLogin})
	register(command{"keygen", "make this party's signing and sealing keys and register them: keygen [--out FILE]", cmdKeygen})
}

func cmdLogin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("login", stderr)
	cf := addClientFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if cf.server == "" || cf.token == "" {
		return fmt.Errorf("%w: login needs --server and --token", errUsage)
	}
	if err := checkServerURL(cf.server); err != nil {
		return err
	}
	c, err := client.New(strings.TrimSuffix(cf.server, "/")+"/taxii2/", client.WithToken(cf.token))
	if err != nil {
		return err
	}
	me, err := c.Me(ctx)
	switch {
	case err == nil:
	case isUnreachable(err):
		return explainUnreachable(err, cf.server)
	case errors.Is(err, client.ErrUnauthorized):
		return fmt.Errorf("the server at %s did not accept the token (wrong, revoked or expired): %w", cf.server, err)
	default:
		return fmt.Errorf("logging in at %s: %w", cf.server, err)
	}
	ps, path, err := loadProfiles()
	if err != nil {
		return err
	}
	name := cf.profile
	if name == "" {
		name = "default"
	}
	keys := cf.keys
	if keys != "" {
		if keys, err = filepath.Abs(keys); err != nil {
			return err
		}
	}
	if keys == "" {
		// Logging in again keeps the party's key file: the profile's own, or
		// the one keygen writes by default for this profile.
		if old, ok := ps.Profiles[name]; ok && old.Party == me.PartyID && old.Keys != "" {
			keys = old.Keys
		} else if def, err := profileFile(name, "keys.pem"); err == nil {
			if _, err := os.Stat(def); err == nil {
				keys, _ = filepath.Abs(def)
			}
		}
	}
	ps.Profiles[name] = profile{Server: cf.server, Token: cf.token, Keys: keys, Party: me.PartyID, Name: me.Name}
	ps.Current = name
	if err := saveProfiles(ps, path); err != nil {
		return err
	}
	return emit(stdout, cf.json, map[string]string{"profile": name, "party": me.PartyID, "name": me.Name, "file": path}, func() {
		fmt.Fprintf(stdout, "logged in as %s (%s); profile %q saved in %s\n", me.Name, me.PartyID, name, path)
	})
}

func cmdKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", stderr)
	cf := addClientFlags(fs)
	out := fs.String("out", "", "private key file to write (default: beside the config file, named after it and the profile: north.json keeps north.keys.pem)")
	noRegister := fs.Bool("no-register", false, "only write the key file; do not register the public keys")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	path := *out
	if path == "" {
		p, err := profileFile(cf.profileName(), "keys.pem")
		if err != nil {
			return err
		}
		path = p
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	keys, err := agreement.GenerateKeys()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := agreement.WritePrivateKeysFile(path, keys); err != nil {
		return err
	}
	pub := keys.Public()
	registered := false
	if !*noRegister {
		c, _, err := cf.client()
		if err != nil {
			return fmt.Errorf("keys written to %s, but not registered: %w", path, err)
		}
		if err := c.RegisterKeys(ctx, pub); err != nil {
			return fmt.Errorf("keys written to %s, but the server refused them: %w", path, err)
		}
		registered = true
		// Remember the key file in the profile in use.
		if ps, ppath, err := loadProfiles(); err == nil {
			name := cf.profile
			if name == "" {
				name = ps.Current
			}
			if p, ok := ps.Profiles[name]; ok {
				p.Keys = path
				ps.Profiles[name] = p
				_ = saveProfiles(ps, ppath)
			}
		}
	}
	return emit(stdout, cf.json, map[string]any{"key_id": pub.KeyID, "file": path, "sealing_recipient": pub.SealingRecipient, "registered": registered}, func() {
		fmt.Fprintf(stdout, "keys written to %s (keep this file private)\nkey id %s, sealing recipient %s\n", path, pub.KeyID, pub.SealingRecipient)
		if registered {
			fmt.Fprintln(stdout, "public keys registered with the server")
		}
	})
}
