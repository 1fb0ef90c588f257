ping -c2 -i0.2 -W2 10.99.2.2 | tail -2
ping -6 -c2 -i0.2 -W2 fd99::2 | tail -2
ping -6 -c1 -W2 fd99::1 | tail -2
ping -c1 -s 3000 -W2 10.99.2.2 | tail -2
ping -6 -c1 -s 5000 -W2 fd99::2 | tail -2
ping -c1 -W2 10.99.2.77 | tail -2
H4=10.99.2.2 H6=fd99::2 python3 t2.py
