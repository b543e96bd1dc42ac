"""student stage of mobiler2l-ns."""
