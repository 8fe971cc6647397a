import ChatterTensor
print("chatter-parity: under construction")
