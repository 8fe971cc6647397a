import ChatterTensor
print("{}")
