package notify

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
)

// errPermanent marks a failure that retrying cannot fix (a 4xx answer, a
// rejected recipient, a bad address).
var errPermanent = errors.New("notify: permanent failure")

// ErrGone means the subscriber no longer exists (a closed websocket
// connection): its subscription should end.
var ErrGone = errors.New("notify: subscriber is gone")

// errStopped means a transport has stopped delivering to a subscription
// and has said why once (a trust Keystone refuses): the notification is
// given up (outcome "stopped") without a log line of its own. It is
// permanent too.
var errStopped = errors.New("notify: deliveries to this subscription are stopped")

// stopped wraps err as a stopped delivery.
func stopped(err error) error { return fmt.Errorf("%w: %w: %w", errStopped, errPermanent, err) }

// discardLogger is the logger of components given none.
func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// permanent wraps err as a permanent failure.
func permanent(err error) error { return fmt.Errorf("%w: %w", errPermanent, err) }

// redactURLError redacts the URL a *url.Error names. (net/http hides the
// password of the URL in its errors, but not the user name, which may be a
// token; url.Parse hides nothing.)
func redactURLError(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		uerr.URL = redactSubscriber(uerr.URL)
	}
	return err
}

// redactSubscriber returns a subscriber URI fit for logs and errors: the
// user information of a URL (user:password@, or a token as the user name)
// is replaced by "xxxxx". Deliveries use the URI as stored. A URI that
// does not parse is not shown beyond its scheme, since where its
// credentials end cannot be told.
func redactSubscriber(subscriber string) string {
	u, err := url.Parse(subscriber)
	if err != nil {
		return schemeOf(subscriber) + ":(a URI that does not parse)"
	}
	if u.User == nil {
		return subscriber
	}
	u.User = url.User("xxxxx")
	return u.String()
}
