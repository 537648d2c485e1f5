%% Erlang distribution ping-pong, the peer of bench/remote: an echo process
%% on one node, a pinger on another that waits for each reply before the
%% next request.
-module(pingpong).
-export([serve/0, run/1]).

%% serve registers an echo process and keeps the node up.
serve() ->
    register(echo, spawn(fun echo/0)),
    receive stop -> ok end.

echo() ->
    receive {From, N} -> From ! N, echo() end.

%% run([Node, Warmup, Millis]) pings echo on Node and prints round trips/s;
%% it exits 1 if Node cannot be reached.
run(Args) ->
    try measure(Args)
    catch C:R ->
        io:format(standard_error, "~p:~p~n", [C, R]),
        halt(1)
    end.

measure([NodeA, WarmA, MsA]) ->
    Node = list_to_atom(atom_to_list(NodeA)),
    Warm = list_to_integer(atom_to_list(WarmA)),
    Ms = list_to_integer(atom_to_list(MsA)),
    true = net_kernel:connect_node(Node),
    Dest = {echo, Node},
    loop(Dest, Warm),
    T0 = erlang:monotonic_time(microsecond),
    Deadline = T0 + Ms * 1000,
    N = timed(Dest, 0, Deadline),
    T1 = erlang:monotonic_time(microsecond),
    io:format("~.1f~n", [N * 1.0e6 / (T1 - T0)]),
    halt(0).

loop(_, 0) -> ok;
loop(Dest, K) ->
    Dest ! {self(), K},
    receive K -> loop(Dest, K - 1)
    after 5000 -> exit(no_reply) %% echo not registered yet, or gone
    end.

timed(Dest, N, Deadline) ->
    loop(Dest, 1000),
    case erlang:monotonic_time(microsecond) >= Deadline of
        true -> N + 1000;
        false -> timed(Dest, N + 1000, Deadline)
    end.
