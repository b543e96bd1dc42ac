"""teacher stage of mobiler2l-ns."""
