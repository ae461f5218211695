package notify

import (
	"context"
	"fmt"

	"github.com/zaqar-raft/zaqar/store"
)

// trustDeliverer serves trust+http and trust+https subscribers (Heat,
// Mistral and Aodh subscribe this way). Delivering needs Keystone trusts,
// which this build does not create yet: such subscriptions are refused when
// they are made, with the reason.
type trustDeliverer struct{}

func newTrustDeliverer() trustDeliverer { return trustDeliverer{} }

func (trustDeliverer) Schemes() []string { return []string{"trust+http", "trust+https"} }

func (trustDeliverer) Check(subscriber string) error {
	return fmt.Errorf("Trust subscribers (%s) need Keystone authentication, which this deployment does not use.", schemeOf(subscriber))
}

func (trustDeliverer) Deliver(context.Context, *store.Subscription, []byte) error {
	return permanent(fmt.Errorf("trust subscribers are not delivered to"))
}
