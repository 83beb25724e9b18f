package hubauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// sealer encrypts and authenticates what the authorization server hands
// out (client ids, codes, tokens, the state of a login in progress), so
// that it keeps no table of them: any replica holding the key reads them
// back, and nobody else can read or forge one.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("the OAuth key has %d bytes; it needs 32 (e.g. head -c 32 /dev/urandom | base64)", len(key))
	}
	block, err := aes.NewCipher(key[:32])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// sealed is what every sealed value carries: its kind, so that one kind is
// never taken for another (a code for a token), and when it expires.
type sealed struct {
	Kind    string `json:"k"`
	Expires int64  `json:"x,omitempty"` // Unix seconds; 0: never
}

func (s sealed) expired(now time.Time) bool { return s.Expires != 0 && now.Unix() >= s.Expires }

// seal encrypts v (a struct embedding sealed) into a URL-safe string,
// prefixed with prefix so that people and logs can tell kinds apart.
func (s *sealer) seal(prefix string, v any) string {
	plain, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own structs are sealed
	}
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return prefix + base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(prefix)))
}

var errUnsealed = errors.New("not issued by this server, or altered")

// open decrypts a value sealed with prefix into v and checks its kind and
// expiry.
func (s *sealer) open(prefix, kind, text string, v interface{ head() sealed }, now time.Time) error {
	if len(text) <= len(prefix) || text[:len(prefix)] != prefix {
		return errUnsealed
	}
	data, err := base64.RawURLEncoding.DecodeString(text[len(prefix):])
	n := s.aead.NonceSize()
	if err != nil || len(data) < n {
		return errUnsealed
	}
	plain, err := s.aead.Open(nil, data[:n], data[n:], []byte(prefix))
	if err != nil {
		return errUnsealed
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return errUnsealed
	}
	h := v.head()
	if h.Kind != kind {
		return errUnsealed
	}
	if h.expired(now) {
		return errors.New("expired")
	}
	return nil
}

func (s sealed) head() sealed { return s }
