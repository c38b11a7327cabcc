"""Who may be emailed: the consent check, unsubscribe pages, suppressions."""
