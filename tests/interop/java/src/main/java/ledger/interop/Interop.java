package ledger.interop;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.Future;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * What a Java team writes from docs/KAFKA.md alone.
 *
 * <pre>
 * produce BOOTSTRAP TOPIC FILE CODEC   FILE: one report a line, "key TAB event_type TAB event_id TAB json";
 *                                      prints "key TAB partition TAB offset" once each is acknowledged
 * consume BOOTSTRAP TOPIC              prints each committed alert message (one JSON a line) up to the
 *                                      end offsets taken at the start
 * </pre>
 */
public final class Interop {
    private static final Duration POLL = Duration.ofMillis(200);
    private static final long READ_MAX_MS = 60_000;  // bound on one consume run

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "produce" -> produce(args[1], args[2], Path.of(args[3]), args[4]);
            case "consume" -> consume(args[1], args[2]);
            default -> throw new IllegalArgumentException("produce or consume, not " + args[0]);
        }
    }

    private static void produce(String bootstrap, String topic, Path file, String codec) throws Exception {
        Properties settings = new Properties();
        settings.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        // docs/KAFKA.md: acks=all, idempotence; the default partitioner (murmur2 of the key).
        settings.put(ProducerConfig.ACKS_CONFIG, "all");
        settings.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        settings.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        settings.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        settings.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        List<String> keys = new ArrayList<>();
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(settings)) {
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                if (line.isBlank()) {
                    continue;
                }
                String[] fields = line.split("\t", 4);
                ProducerRecord<String, String> record = new ProducerRecord<>(topic, fields[0], fields[3]);
                record.headers().add("schema_version", "1".getBytes(StandardCharsets.UTF_8));
                record.headers().add("event_type", fields[1].getBytes(StandardCharsets.UTF_8));
                record.headers().add("event_id", fields[2].getBytes(StandardCharsets.UTF_8));
                keys.add(fields[0]);
                sent.add(producer.send(record));
            }
            producer.flush();
            for (int i = 0; i < sent.size(); i++) {
                RecordMetadata placed = sent.get(i).get();
                System.out.println(keys.get(i) + "\t" + placed.partition() + "\t" + placed.offset());
            }
        }
    }

    private static void consume(String bootstrap, String topic) throws IOException {
        Properties settings = new Properties();
        settings.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        settings.put(ConsumerConfig.GROUP_ID_CONFIG, "java-dashboard-" + UUID.randomUUID());
        // docs/KAFKA.md: only committed alert transitions.
        settings.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        settings.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        settings.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        settings.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        settings.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(settings)) {
            List<TopicPartition> partitions = consumer.partitionsFor(topic).stream()
                .map(info -> new TopicPartition(topic, info.partition())).toList();
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> ends = consumer.endOffsets(partitions);  // read_committed: the last stable offsets
            long deadline = System.currentTimeMillis() + READ_MAX_MS;
            while (System.currentTimeMillis() < deadline
                    && partitions.stream().anyMatch(tp -> consumer.position(tp) < ends.get(tp))) {
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(POLL)) {
                    System.out.println(new String(record.value(), StandardCharsets.UTF_8));
                }
            }
        }
    }
}
