// Package forecast answers two questions about a quota: who is using it,
// and when it runs out at the recent rate.
//
// A Tracker counts the tokens settled by each key in each bucket by the
// minute, in a one-hour ring per (key, bucket) plus a total for the day,
// so its memory is bounded by the keys and buckets and not by traffic; it
// names the top consumers of a bucket over the last five minutes and
// today, and gives the recent rates (last 5, 15 and 60 minutes) of a
// bucket and of a key's budget. Project turns a daily bucket's (or a
// budget's) state and those rates into a run-out time with a range: the
// last hour's rate gives the headline, the fastest and slowest of the
// three rates give the earliest and latest times, and a day that ends
// first says "not today".
//
// Time is a parameter everywhere: nothing here reads the clock, sleeps or
// starts goroutines, so tests replay a day on a fake clock. The package
// imports nothing of Headroom's; the gateway feeds it settled costs and
// the ledger's state, and reads its answers for /v1/status, /metrics and
// the 429 message of a spent daily bucket.
package forecast
