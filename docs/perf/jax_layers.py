"""ResNet-20's pieces in JAX, timed as `adaexp bench layers` times ours: each distinct 3x3
convolution's forward pass, input and weight gradients, and batch norm + ReLU (forward, and
forward + backward), batch 64, NHWC, jitted, median of 20 calls, ms.
Usage: python3 docs/perf/jax_layers.py   (pip install "jax[cpu]")"""
import time, numpy as np, jax, jax.numpy as jnp
from jax import lax
B=64
def t(f,*a,n=20):
    f=jax.jit(f); r=f(*a); jax.block_until_ready(r)
    ts=[]
    for _ in range(n):
        s=time.perf_counter(); jax.block_until_ready(f(*a)); ts.append(time.perf_counter()-s)
    return sorted(ts)[n//2]*1e3
for cin,cout,s,side in [(3,16,1,32),(16,16,1,32),(16,32,2,32),(32,32,1,16),(32,64,2,16),(64,64,1,8)]:
    x=jnp.array(np.random.randn(B,side,side,cin),jnp.float32); w=jnp.array(np.random.randn(3,3,cin,cout),jnp.float32)
    conv=lambda x,w: lax.conv_general_dilated(x,w,(s,s),[(1,1),(1,1)],dimension_numbers=("NHWC","HWIO","NHWC"))
    y=conv(x,w); g=jnp.ones_like(y)
    fwd=t(conv,x,w)
    _,vjp=jax.vjp(conv,x,w)
    dx=t(lambda g: jax.vjp(conv,x,w)[1](g)[0], g)
    dw=t(lambda g: jax.vjp(conv,x,w)[1](g)[1], g)
    def bnrelu(y):
        m=y.mean((0,1,2)); v=y.var((0,1,2)); return jax.nn.relu((y-m)*lax.rsqrt(v+1e-5))
    bn=t(bnrelu,y)
    bnb=t(lambda y,g: jax.vjp(bnrelu,y)[1](g)[0], y, g)
    print(f"{cin}->{cout} s{s} {side}: fwd {fwd:.2f} ({2*B*cin*cout*9*(side//s)**2/fwd/1e6:.1f} GF/s) dx {dx:.2f} dw {dw:.2f} bn+relu {bn:.2f} bn bwd(incl fwd) {bnb:.2f}")
