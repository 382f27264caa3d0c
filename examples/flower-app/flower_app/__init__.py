"""Example Flower app using fedot's strategies as a library."""
