set terminal svg size 760,480 dynamic font "sans,12"
set output "RoundTrip.svg"
set title "send_bytes of n bytes + recv_bytes of the echo" noenhanced
set xlabel "message size (bytes)" noenhanced
set ylabel "seconds per round trip" noenhanced
set logscale x 10
set logscale y
set format x "%.0s%c"
set format y "%.0e"
set rmargin 6
set grid
set key top left
set datafile missing "NaN"
plot "RoundTrip.dat" using 1:2:3:4 with yerrorlines lw 2 pt 7 title "library", \
     "RoundTrip.dat" using 1:5:6:7 with yerrorlines lw 2 pt 5 title "raw system calls", \
     "RoundTrip.dat" using 1:8:9:10 with yerrorlines lw 2 pt 9 title "CPython 3.11"
