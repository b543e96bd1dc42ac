"""distill stage of mobiler2l-ns."""
