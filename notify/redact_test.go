package notify

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestRedactSubscriber_HidesUserInformationOnly(t *testing.T) {
	for in, want := range map[string]string{
		"http://user:pass@example.com:8080/hook?x=1": "http://xxxxx@example.com:8080/hook?x=1",
		"https://token@example.com/hook":             "https://xxxxx@example.com/hook",
		"http://:pass@[::1]:9/":                      "http://xxxxx@[::1]:9/",
		"http://example.com/hook?user=a":             "http://example.com/hook?user=a",
		"mailto:ops@example.com?subject=x":           "mailto:ops@example.com?subject=x",
		"wsconn://node1/c0ffee":                      "wsconn://node1/c0ffee",
		"http://us er:pa ss@example.com/":            "http:(a URI that does not parse)",
	} {
		if got := redactSubscriber(in); got != want {
			t.Errorf("redactSubscriber(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWebhook_ErrorsDoNotNameTheCredentials(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, target := range []string{
		"http://tok-user:tok-pass@" + closed + "/refused", // a transport error names the URL
		"http://tok-user:tok pass@" + closed + "/",        // so does a URL that does not parse
	} {
		err := webhook(context.Background(), &http.Client{}, target, nil, []byte(`{}`))
		if err == nil || strings.Contains(err.Error(), "tok-") {
			t.Errorf("webhook to %q: error %v, want one without the credentials", target, err)
		}
	}
}
