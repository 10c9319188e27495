set terminal svg size 760,480 dynamic font "sans,12"
set output "Clients.svg"
set title "n client processes at once, 1000 d[k] = v each on one managed dict (one vCPU)" noenhanced
set xlabel "client processes" noenhanced
set ylabel "operations per second, all clients" noenhanced
set logscale x 2
set logscale y
set format x "%.0s%c"
set format y "%.0e"
set rmargin 6
set grid
set key top left
set datafile missing "NaN"
plot "Clients.dat" using 1:2:3:4 with yerrorlines lw 2 pt 7 title "library", \
     "Clients.dat" using 1:5:6:7 with yerrorlines lw 2 pt 5 title "raw system calls", \
     "Clients.dat" using 1:8:9:10 with yerrorlines lw 2 pt 9 title "CPython 3.11"
