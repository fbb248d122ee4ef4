"""Example problems: copy one to start your own."""
