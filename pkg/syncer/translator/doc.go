// Package translator maps names and metadata between a virtual cluster and
// its host: NameTranslator is what the syncer engine needs, Namespaced and
// Cluster are the default translators (readable, hashed past 63 characters,
// marked as managed); tenant label keys are rewritten into podkit's domain and
// only podkit's keys are managed on host objects. It performs no API calls.
package translator
