package export

// HECConfig: Splunk HTTP Event Collector.
type HECConfig struct {
	URL string `yaml:"url"`
}
