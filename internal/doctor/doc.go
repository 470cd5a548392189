// Package doctor explains why Claude Code on Amazon Bedrock is throttled and
// what to change. It reads Claude Code's settings the way Claude Code does,
// computes what each request reserves under both accounting profiles and how
// many requests and agent tasks fit in the quota, optionally probes Bedrock
// (or a Headroom gateway, or the emulator) with one tiny request and reads
// the applied Service Quotas, and gives a verdict: the seed's Situation 1 (a
// provisioning problem only AWS Support can fix), Situation 2 (reservations
// burning the quota) or healthy.
//
// It takes every input as a parameter (home and project directories, the
// environment as a map, an aws.Config, a clock) and reads no environment
// variable on its own. It never prints a credential: a bearer key is only
// reported as set or not. It only reads settings files; it never writes them.
package doctor
