"""capture stage of mobiler2l-ns."""
