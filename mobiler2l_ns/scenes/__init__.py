"""scenes stage of mobiler2l-ns."""
