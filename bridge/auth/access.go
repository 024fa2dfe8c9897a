package auth

// The methods below complete what the bridge asks of a client's access
// (bridge.Access): a verified token's Claims are that access, with no
// adapter between them.

// IsAdmin reports the admin scope: c sees every user and may use the
// admin calls. A nil *Claims is no admin.
func (c *Claims) IsAdmin() bool { return c.SeesAll() }

// Scope returns the domains whose users c may see and the bare JIDs it may
// see besides (nil, nil for an admin, who sees all, and for a nil *Claims,
// who sees none).
func (c *Claims) Scope() (domains, users []string) {
	if c == nil || c.Admin {
		return nil, nil
	}
	return c.Domains, c.Users
}

// Key returns the token's subject, which its rate limit and its web
// presence count against; "" for a nil *Claims or a token without "sub".
func (c *Claims) Key() string {
	if c == nil {
		return ""
	}
	return c.Subject
}
