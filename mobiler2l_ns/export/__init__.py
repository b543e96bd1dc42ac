"""export stage of mobiler2l-ns."""
