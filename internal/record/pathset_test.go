package record

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestDefaultSensitive(t *testing.T) {
	set := DefaultSensitive()
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/home/alice/.ssh/id_ed25519", true},
		{"/root/.ssh/id_rsa", true},
		{"/tmp/x/home/.ssh/id_ecdsa_sk", true},
		{".ssh/id_rsa", true},
		{"id_rsa", true},             // cd ~/.ssh && cat id_rsa
		{"../keys/id_ed25519", true}, // relative to an unknown directory
		{"/home/alice/.ssh/id_ed25519.pub", false},
		{"/home/alice/.ssh/known_hosts", false},
		{"/home/alice/.ssh/authorized_keys", true},
		{"/etc/ssh/ssh_host_ed25519_key", true},
		{"/etc/ssh/ssh_host_ed25519_key.pub", false},
		{"/home/alice/.aws/credentials", true},
		{"/home/alice/.aws/config", false},
		{"/home/alice/.config/gcloud", true}, // the directory itself: "**" matches no component
		{"/home/alice/.config/gcloud/legacy_credentials/a@b/adc.json", true},
		{"/home/alice/.azure/msal_token_cache.json", true},
		{"/home/alice/.kube/config", true},
		{"/home/alice/.kube/cache/discovery", false},
		{"/home/alice/.docker/config.json", true},
		{"/srv/app/.env", true},
		{".env", true},
		{"/srv/app/.env.production", true},
		{"/srv/app/.env.example", false},
		{"/srv/app/.envrc", true},
		{"/srv/app/env", false},
		{"/etc/shadow", true},
		{"/etc/gshadow-", true},
		{"/etc//./shadow", true},
		{"/etc/../etc/shadow", true},
		{"/../../etc/shadow", true},
		{"etc/shadow", true}, // cd / && cat etc/shadow
		{"/var/lib/machines/c1/etc/shadow", true},
		{"/etc/passwd", false},
		{"/etc/shadow/x", false},
		{"/home/alice/.git-credentials", true},
		{"/home/alice/.netrc", true},
		{"/home/alice/.gnupg/private-keys-v1.d/ABCD.key", true},
		{"/home/alice/.gnupg/pubring.kbx", false},
		{"/home/alice/.mozilla/firefox/abcd.default-release/logins.json", true},
		{"/home/alice/.config/google-chrome/Default/Login Data", true},
		{"/home/alice/.config/google-chrome/Default/History", false},
		{"/home/alice/.config/chromium/Profile 1/Cookies", true},
		{"/home/alice/.local/share/keyrings/login.keyring", true},
		{"/home/alice/.config/openai/auth.json", true},
		{"/home/alice/.anthropic/api_key", true},
		{"/home/alice/.claude/.credentials.json", true},
		{"/home/alice/.claude/settings.json", false},
		{"/usr/lib/x86_64-linux-gnu/libc.so.6", false},
		{"/etc/ld.so.cache", false},
		{"", false},
		{"/", false},
		{".", false},
		{"/home/alice/.ssh/id_rsa\xff", true}, // matched on the exact bytes
	} {
		if got := set.Match([]byte(tc.path)); got != tc.want {
			t.Errorf("default list: Match(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestPathSetRules(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		path     string
		want     bool
	}{
		// Anchored patterns match the whole absolute path, never a relative one.
		{[]string{"/etc/secret"}, "/etc/secret", true},
		{[]string{"/etc/secret"}, "etc/secret", false},
		{[]string{"/etc/secret"}, "/x/etc/secret", false},
		{[]string{"/srv/*/token"}, "/srv/app/token", true},
		{[]string{"/srv/*/token"}, "/srv/a/b/token", false},
		{[]string{"/srv/**/token"}, "/srv/a/b/token", true},
		{[]string{"/srv/**/token"}, "/srv/token", true},
		{[]string{"/srv/**"}, "/srv", true},
		{[]string{"/srv/**"}, "/srvx", false},
		// Unanchored ones match the last components; "~/" is the same.
		{[]string{"~/.secrets/*"}, "/home/u/.secrets/a", true},
		{[]string{"~/.secrets/*"}, ".secrets/a", true},
		{[]string{"~/.secrets/*"}, "a", false},
		{[]string{"vault/*.key"}, "/opt/vault/tls.key", true},
		{[]string{"vault/*.key"}, "/opt/vault/sub/tls.key", false},
		{[]string{"vault/**/*.key"}, "/opt/vault/sub/tls.key", true},
		{[]string{"**/tokens/**"}, "/a/tokens/b/c", true},
		{[]string{"[a-c]?.pem"}, "/x/b1.pem", true},
		{[]string{"[a-c]?.pem"}, "/x/d1.pem", false},
		{[]string{`lit\*`}, "/x/lit*", true},
		{[]string{`lit\*`}, "/x/lit1", false},
		// The last matching pattern decides.
		{[]string{"*.key", "!test.key"}, "/a/test.key", false},
		{[]string{"*.key", "!test.key"}, "/a/prod.key", true},
		{[]string{"!test.key", "*.key"}, "/a/test.key", true},
		{[]string{".env", "!**"}, "/a/.env", false},
		{[]string{"!**", "token"}, "/a/token", true},
		// Cleaning is lexical.
		{[]string{"/a/b"}, "/a/./c/../b", true},
		{[]string{"/a/b"}, "/a/b/", true},
		{[]string{"b/c"}, "../b/c", true},
		{[]string{"/b/c"}, "../b/c", false},
		// Many components (more than Match keeps on its stack).
		{[]string{"deep/key"}, strings.Repeat("/d", 100) + "/deep/key", true},
	} {
		set, err := CompilePathSet(tc.patterns)
		if err != nil {
			t.Fatalf("CompilePathSet(%q): %v", tc.patterns, err)
		}
		if got := set.Match([]byte(tc.path)); got != tc.want {
			t.Errorf("%q: Match(%q) = %v, want %v", tc.patterns, tc.path, got, tc.want)
		}
	}
	var nilSet *PathSet
	if nilSet.Match([]byte("/etc/shadow")) {
		t.Error("a nil set matched")
	}
}

func TestPathSetBadPatterns(t *testing.T) {
	for _, p := range []string{"", "!", "~/", "a/[b", "a/../b", "./a", "!/x/./y", "caf\xe9"} {
		if _, err := CompilePathSet([]string{"ok", p}); !errors.Is(err, ErrBadPattern) {
			t.Errorf("CompilePathSet(%q): %v, want ErrBadPattern", p, err)
		}
	}
}

func TestParsePatterns(t *testing.T) {
	got := ParsePatterns("# comment\n\n  .env  \r\n!x\n  # also a comment\nLogin Data\n")
	if want := []string{".env", "!x", "Login Data"}; !slices.Equal(got, want) {
		t.Errorf("ParsePatterns = %q, want %q", got, want)
	}
}

// TestDefaultSensitiveDocumented keeps docs/schema.md's copy of the list
// equal to DefaultSensitivePaths.
func TestDefaultSensitiveDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/schema.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- default sensitive paths -->\n```text\n")
	if !ok {
		t.Fatal("docs/schema.md has no <!-- default sensitive paths --> text block")
	}
	list, _, _ := strings.Cut(rest, "```")
	if list != DefaultSensitivePaths {
		t.Errorf("docs/schema.md lists\n%s\nDefaultSensitivePaths is\n%s", list, DefaultSensitivePaths)
	}
}

func BenchmarkSensitiveMatch(b *testing.B) {
	set := DefaultSensitive()
	path := []byte("/usr/lib/x86_64-linux-gnu/libc.so.6")
	b.ReportAllocs()
	for b.Loop() {
		set.Match(path)
	}
}

func TestSensitiveMatchAllocs(t *testing.T) {
	set := DefaultSensitive()
	for _, p := range []string{"/usr/lib/x86_64-linux-gnu/libc.so.6", "/home/u/.config/gcloud/a/b.json", "/srv/../app/./.env.local"} {
		path := []byte(p)
		if allocs := testing.AllocsPerRun(100, func() { set.Match(path) }); allocs != 0 {
			t.Errorf("Match(%q): %v allocs, want 0", p, allocs)
		}
	}
}
