package export

// SyslogConfig: RFC 5424 over TCP (RFC 6587 octet counting) or TLS (RFC 5425).
type SyslogConfig struct {
	Address string `yaml:"address"` // host:port
}
