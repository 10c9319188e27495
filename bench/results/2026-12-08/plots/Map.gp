set terminal svg size 760,480 dynamic font "sans,12"
set output "Map.svg"
set title "Pool(2).map(ident, range(n)), default chunksize (CPython up to n = 1,000,000 only, to keep the run bounded)" noenhanced
set xlabel "items" noenhanced
set ylabel "seconds per map" noenhanced
set logscale x 10
set logscale y
set format x "%.0s%c"
set format y "%.0e"
set rmargin 6
set grid
set key top left
set datafile missing "NaN"
plot "Map.dat" using 1:2:3:4 with yerrorlines lw 2 pt 7 title "library", \
     "Map.dat" using 1:5:6:7 with yerrorlines lw 2 pt 5 title "raw system calls", \
     "Map.dat" using 1:8:9:10 with yerrorlines lw 2 pt 9 title "CPython 3.11"
