
r-1In the beginning 