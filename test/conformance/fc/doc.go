// Package fc is the FrameworkController conformance suite: FC's example
// scenarios (microsoft/frameworkcontroller example/framework/basic and
// scenario, doc/user-manual.md), written anew as podkit Frameworks and run
// on a kwok cluster, each checked against the final state, completion
// code, phrase, attributes, retry counts and pod names FC reaches. The
// table in docs/framework.md lists the same expectations.
package fc
