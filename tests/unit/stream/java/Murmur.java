// The Java client's partition for keyed records, for tests/unit/stream/test_partition.py:
// reads lines "PARTITIONS HEXKEY" on stdin, prints BuiltInPartitioner.partitionForKey for each
// (Utils.toPositive(Utils.murmur2(key)) % partitions, what the default partitioner does).
// Run as: java -cp kafka-clients.jar Murmur.java
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.HexFormat;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;

public class Murmur {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        StringBuilder out = new StringBuilder();
        for (String line; (line = in.readLine()) != null; ) {
            String[] parts = line.split(" ", -1);
            byte[] key = HexFormat.of().parseHex(parts[1]);
            out.append(BuiltInPartitioner.partitionForKey(key, Integer.parseInt(parts[0]))).append('\n');
        }
        System.out.print(out);
    }
}
