package service

import "context"

// confirmationStage is the notifier's stage: after a subscription is made
// unconfirmed, or a subscriber unconfirms, it sends the (un)subscribe
// confirmation request (contract §10.5). The service adds it last, when
// confirmation is required and a Confirmer is configured.
type confirmationStage struct{ s *Service }

func (confirmationStage) Name() string { return "confirmation" }

func (confirmationStage) Before(context.Context, *Op) *Error { return nil }

func (st confirmationStage) After(ctx context.Context, op *Op) {
	switch {
	case op.Kind == OpSubscribe && !op.Subscription.Confirmed:
		st.s.sendConfirmation(ctx, op.Caller, op.Queue, op.Subscription.ID, true)
	case op.Kind == OpConfirmSubscription && !op.Subscription.Confirmed:
		st.s.sendConfirmation(ctx, op.Caller, op.Queue, op.Subscription.ID, false)
	}
}
