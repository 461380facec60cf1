// Package config defines edgetrack's settings, their defaults, how they are
// loaded, and how they are checked.
//
// A setting is a leaf of [Config] and is named by its dotted YAML path, such
// as edge.aggregator_url. Values are layered, later layers winning:
//
//  1. [Default]
//  2. the YAML file given to [Load]
//  3. .env in the working directory
//  4. .env.local in the working directory
//  5. the process environment
//
// Layers 3–5 are merged by [Environ] into one environment list, which [Load]
// takes as an argument: Load itself never reads or changes the process
// environment, so tests pass their own.
//
// In the environment a setting is EDGETRACK_<PATH>, the path in upper case with
// "_" for every "." ([EnvName]). Because setting names contain "_" themselves,
// variable names are never split: the table of variables is built from the
// leaf paths of [Config] by reflection over its yaml tags, and a test checks
// that no two paths share a variable. An EDGETRACK_ variable that names no
// setting is an error, as is a YAML key that names no setting, so that typos
// are reported instead of silently ignored.
//
// Load does not validate. The edge and aggregator subcommands call
// [Config.ValidateEdge] and [Config.ValidateAggregator]; dev, which runs both
// in one process, calls [Config.Validate], which adds cross-checks between the
// two. Each reports every problem at once, one line per problem, prefixed
// with the setting's path.
package config
