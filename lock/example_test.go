package lock_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/couponq/couponq/lock"
)

func ExampleAcquire() {
	ctx := context.Background()
	locker := lock.NewMemory()
	held, _ := locker.Obtain(ctx, "campaign:user", time.Minute)

	// Someone holds it: wait up to 50 ms, then give up.
	_, err := lock.Acquire(ctx, locker, "campaign:user", time.Minute, 50*time.Millisecond, lock.Backoff{})
	fmt.Println(errors.Is(err, lock.ErrNotObtained))

	_ = held.Release(ctx)
	lk, err := lock.Acquire(ctx, locker, "campaign:user", time.Minute, 50*time.Millisecond, lock.Backoff{})
	fmt.Println(err)
	_ = lk.Release(ctx)
	// Output:
	// true
	// <nil>
}
